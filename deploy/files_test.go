package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func readYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func dig(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

// envKeys returns the names of a compose `environment` (map form, merge keys
// already resolved by the YAML decoder).
func envKeys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("environment must be a map, got %T", v)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestCompose(t *testing.T) {
	c := readYAML(t, "compose.yaml")
	services, _ := c["services"].(map[string]any)
	for _, name := range serviceNames {
		svc, ok := services[name].(map[string]any)
		if !ok {
			t.Fatalf("compose has no service %s", name)
		}
		if dig(svc, "build", "dockerfile") != "deploy/Dockerfile" || dig(svc, "build", "context") != ".." ||
			dig(svc, "build", "args", "SERVICE") != name {
			t.Errorf("%s: must build deploy/Dockerfile from the repo root with SERVICE=%s", name, name)
		}
		for _, k := range envKeys(t, svc["environment"]) {
			if !envAllowed(name, k) {
				t.Errorf("compose %s: env %s is not in knownEnv[%q]", name, k, name)
			}
		}
		if env := svc["environment"].(map[string]any); env["NATS_USER"] != name {
			t.Errorf("compose %s: connects to NATS as %v", name, env["NATS_USER"])
		}
	}
	for _, n := range []string{"nats-0", "nats-1", "nats-2"} {
		svc := services[n].(map[string]any)
		if !slices.Contains(toStrings(svc["volumes"]), "./nats/nats.conf:/etc/nats/nats.conf:ro") {
			t.Errorf("%s must mount deploy/nats/nats.conf", n)
		}
		aliases := toStrings(dig(svc, "networks", "default", "aliases"))
		if !slices.Contains(aliases, n+".nats-headless") {
			t.Errorf("%s needs the alias %s.nats-headless used by the routes", n, n)
		}
		for _, k := range envKeys(t, svc["environment"]) {
			if !envAllowed("nats", k) {
				t.Errorf("compose %s: env %s is not in knownEnv[nats]", n, k)
			}
		}
	}
	mongo := services["mongo"].(map[string]any)
	if !slices.Contains(toStrings(mongo["command"]), "rs0") || !strings.Contains(strings.Join(toStrings(dig(mongo, "healthcheck", "test")), " "), "rs.initiate") {
		t.Error("mongo must run as replica set rs0 and initiate it")
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

var chartVarRe = regexp.MustCompile(`^<< \$([A-Z_][A-Z0-9_]*) >>$`)

// The Helm values repeat nats.conf's users; they must not drift apart.
func TestHelmValuesMatchNATSConf(t *testing.T) {
	_, opts := loadConf(t)
	v := readYAML(t, "helm/nats-values.yaml")
	if dig(v, "config", "cluster", "replicas") != float64(3) || dig(v, "config", "cluster", "enabled") != true {
		t.Error("helm: want a 3-replica cluster")
	}
	users, _ := dig(v, "config", "merge", "authorization", "users").([]any)
	if len(users) != len(opts.Users) {
		t.Fatalf("helm has %d users, nats.conf %d", len(users), len(opts.Users))
	}
	env, _ := dig(v, "container", "env").(map[string]any)
	for _, u := range opts.Users {
		var hu map[string]any
		for _, x := range users {
			if m := x.(map[string]any); m["user"] == u.Username {
				hu = m
			}
		}
		if hu == nil {
			t.Errorf("helm lacks user %s", u.Username)
			continue
		}
		pw, _ := hu["password"].(string)
		m := chartVarRe.FindStringSubmatch(pw)
		if m == nil || "pw-"+m[1] != u.Password {
			t.Errorf("helm %s: password %q, nats.conf uses another variable", u.Username, pw)
			continue
		}
		if dig(env, m[1], "valueFrom", "secretKeyRef", "key") != m[1] {
			t.Errorf("helm: container.env lacks %s from the Secret", m[1])
		}
		if !sameSet(toStrings(dig(hu, "permissions", "publish", "allow")), u.Permissions.Publish.Allow) ||
			!sameSet(toStrings(dig(hu, "permissions", "subscribe", "allow")), u.Permissions.Subscribe.Allow) ||
			(dig(hu, "permissions", "allow_responses") == true) != (u.Permissions.Response != nil) {
			t.Errorf("helm %s: permissions differ from nats.conf", u.Username)
		}
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	d := string(b)
	for _, want := range []string{
		"FROM golang:${GO_VERSION} AS build", "ARG GO_VERSION=1.26",
		"FROM gcr.io/distroless/static-debian12:nonroot", "USER 65532:65532",
		"CGO_ENABLED=0", "GOWORK=off", `-trimpath -ldflags "-s -w"`, "go mod download",
		"./cmd/${SERVICE}", "EXPOSE 9100 8080 9090",
	} {
		if !strings.Contains(d, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, name := range serviceNames {
		if !strings.Contains(d, name+"|") && !strings.Contains(d, "|"+name+")") {
			t.Errorf("Dockerfile does not accept SERVICE=%s", name)
		}
	}
	// Module files are copied (and downloaded) before any source.
	if strings.Index(d, "go mod download") > strings.Index(d, "COPY pkg/ ") {
		t.Error("go mod download must come before the sources are copied")
	}
}
