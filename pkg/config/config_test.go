package config

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

type sample struct {
	URL     string
	Addr    string
	N       int
	D       time.Duration
	On      bool
	Origins []string
	Rate    float64
}

func (s *sample) register(set *Set) {
	set.URL(&s.URL, "nats-url", "NATS_URL", "nats://127.0.0.1:4222", "", true, "nats")
	set.Addr(&s.Addr, "addr", "TALIM_EDGE_ADDR", ":8080", "")
	set.Int(&s.N, "n", "TALIM_N", 10, 1, "")
	set.Duration(&s.D, "d", "TALIM_D", 5*time.Second, "")
	set.Bool(&s.On, "on", "TALIM_ON", false, "")
	set.List(&s.Origins, "origins", "TALIM_ORIGINS", "", "")
	set.Float(&s.Rate, "rate", "TALIM_RATE", 20, "")
}

func load(t *testing.T, env map[string]string, args ...string) (sample, error) {
	t.Helper()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	set := NewSet(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	var s sample
	s.register(set)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return s, set.Load()
}

func TestLoad_DefaultsEnvFlags(t *testing.T) {
	t.Parallel()
	s, err := load(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "nats://127.0.0.1:4222" || s.Addr != ":8080" || s.N != 10 || s.D != 5*time.Second || s.On || s.Origins != nil || s.Rate != 20 {
		t.Fatalf("defaults = %+v", s)
	}
	s, err = load(t, map[string]string{"TALIM_N": "3", "TALIM_ORIGINS": "https://a.example, ,https://b.example", "NATS_URL": "nats://a:4222,nats://b:4222"}, "-n", "7")
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 7 {
		t.Fatalf("flag must win over env: N = %d", s.N)
	}
	if len(s.Origins) != 2 || s.Origins[1] != "https://b.example" {
		t.Fatalf("origins = %q", s.Origins)
	}
}

func TestLoad_ErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"NATS_URL":        "not-a-url",
		"TALIM_EDGE_ADDR": "8080",
		"TALIM_N":         "0",
		"TALIM_D":         "5",
		"TALIM_ON":        "maybe",
		"TALIM_RATE":      "-1",
	}
	for env, val := range cases {
		_, err := load(t, map[string]string{env: val})
		if err == nil {
			t.Errorf("%s=%q accepted", env, val)
			continue
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), env) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s=%q: error %q must be one line naming the variable", env, val, err)
		}
	}
	if _, err := load(t, map[string]string{"NATS_URL": "http://x:1"}); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("wrong scheme: %v", err)
	}
}

func TestSet_Vars(t *testing.T) {
	t.Parallel()
	set := NewSet(nil, func(string) (string, bool) { return "", false })
	var s sample
	s.register(set)
	vars := set.Vars()
	if len(vars) != 7 || vars[0].Env != "NATS_URL" {
		t.Fatalf("vars = %+v", vars)
	}
}
