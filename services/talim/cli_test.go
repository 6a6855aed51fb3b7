package talim

import (
	"bytes"
	"strings"
	"testing"

	"github.com/talim/realtime/pkg/auth"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDev_BadConfigExitsWithOneLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"nats url", map[string]string{"NATS_URL": "not-a-url"}, "NATS_URL"},
		{"mongo uri", map[string]string{"MONGODB_URI": "http://x"}, "MONGODB_URI"},
		{"edge addr", map[string]string{"TALIM_EDGE_ADDR": "nope"}, "TALIM_EDGE_ADDR"},
		{"store", map[string]string{"TALIM_DEV_STORE": "redis"}, "TALIM_DEV_STORE"},
		{"pg port", map[string]string{"TALIM_DEV_PG_PORT": "x"}, "TALIM_DEV_PG_PORT"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			c.env["TALIM_DATA_DIR"] = t.TempDir()
			code := devCommand(nil, env(c.env), &out, &errb)
			if code == 0 {
				t.Fatal("exit 0, want non-zero")
			}
			lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Fatalf("stderr = %q, want one line naming %s", errb.String(), c.want)
			}
		})
	}
}

func TestToken_PrintsOnlyAVerifiableJWT(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	code := tokenCommand([]string{"--user", "t1", "--name", "Teacher", "--roles", "teacher,admin", "--ttl", "1h"},
		env(map[string]string{"TALIM_JWT_SECRET": "s3cret"}), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	if strings.Count(out.String(), "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("stdout = %q, want exactly one JWT line", out.String())
	}
	v, err := auth.NewVerifier(t.Context(), auth.Config{Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if c.UserID != "t1" || c.Name != "Teacher" || !c.HasRole("teacher") || !c.HasRole("admin") {
		t.Fatalf("claims = %+v", c)
	}
	if code := tokenCommand(nil, env(map[string]string{"TALIM_JWT_SECRET": "x"}), &out, &errb); code != 2 {
		t.Fatalf("missing --user: exit %d, want 2", code)
	}
}
