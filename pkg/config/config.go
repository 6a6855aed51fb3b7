// Package config binds configuration fields to command-line flags and environment
// variables with defaults. Precedence: an explicitly set flag, then the environment
// variable, then the default. Errors always name the variable that is wrong, so a bad
// deployment fails with one clear line.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Var describes one configuration variable, for validation messages and the README's
// configuration table.
type Var struct {
	Flag    string
	Env     string
	Default string
	Usage   string
}

// Set binds variables to a flag set and an environment lookup.
type Set struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	vars   []Var
	binds  []func() error
}

// NewSet returns a Set that registers flags on fs and reads the environment with
// lookup (os.LookupEnv when nil).
func NewSet(fs *flag.FlagSet, lookup func(string) (string, bool)) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Set{fs: fs, lookup: lookup}
}

// Vars lists every variable registered so far, sorted by environment name.
func (s *Set) Vars() []Var {
	out := append([]Var(nil), s.vars...)
	sort.Slice(out, func(i, j int) bool { return out[i].Env < out[j].Env })
	return out
}

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid configuration")

// Errorf returns an error naming the variable env.
func Errorf(env, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, env, fmt.Sprintf(format, args...))
}

func (s *Set) add(name, env, def, usage string, parse func(string) error) {
	s.vars = append(s.vars, Var{Flag: name, Env: env, Default: def, Usage: usage})
	var fromFlag *string
	if s.fs != nil && name != "" {
		fromFlag = new(string)
		*fromFlag = "\x00unset"
		s.fs.StringVar(fromFlag, name, "\x00unset", fmt.Sprintf("%s (env %s, default %q)", usage, env, def))
	}
	s.binds = append(s.binds, func() error {
		raw, src := def, "default of "+env
		if v, ok := s.lookup(env); ok {
			raw, src = v, env
		}
		if fromFlag != nil && *fromFlag != "\x00unset" {
			raw, src = *fromFlag, "-"+name
		}
		if err := parse(strings.TrimSpace(raw)); err != nil {
			if src == env {
				return fmt.Errorf("%w: %s=%q: %v", ErrInvalid, env, raw, err)
			}
			return fmt.Errorf("%w: %s (%s=%q): %v", ErrInvalid, env, src, raw, err)
		}
		return nil
	})
}

// String binds a string.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.add(name, env, def, usage, func(v string) error { *p = v; return nil })
}

// Bool binds a boolean (true/false/1/0).
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.add(name, env, strconv.FormatBool(def), usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	})
}

// Int binds an integer that must be at least min.
func (s *Set) Int(p *int, name, env string, def, minimum int, usage string) {
	s.add(name, env, strconv.Itoa(def), usage, func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want an integer")
		}
		if n < minimum {
			return fmt.Errorf("want at least %d", minimum)
		}
		*p = n
		return nil
	})
}

// Float binds a float that must be positive.
func (s *Set) Float(p *float64, name, env string, def float64, usage string) {
	s.add(name, env, strconv.FormatFloat(def, 'g', -1, 64), usage, func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			return errors.New("want a positive number")
		}
		*p = f
		return nil
	})
}

// Duration binds a positive duration such as 5s or 250ms.
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	s.add(name, env, def.String(), usage, func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 5s or 250ms")
		}
		if d <= 0 {
			return errors.New("want a positive duration")
		}
		*p = d
		return nil
	})
}

// List binds a comma-separated list; empty items are dropped.
func (s *Set) List(p *[]string, name, env, def, usage string) {
	s.add(name, env, def, usage, func(v string) error {
		*p = SplitList(v)
		return nil
	})
}

// Addr binds a host:port listen address.
func (s *Set) Addr(p *string, name, env, def, usage string) {
	s.add(name, env, def, usage, func(v string) error {
		if err := ValidateAddr(v); err != nil {
			return err
		}
		*p = v
		return nil
	})
}

// URL binds a URL whose scheme is one of schemes (comma-separated servers allowed
// when multi is true, as NATS accepts).
func (s *Set) URL(p *string, name, env, def, usage string, multi bool, schemes ...string) {
	s.add(name, env, def, usage, func(v string) error {
		parts := []string{v}
		if multi {
			parts = SplitList(v)
		}
		if len(parts) == 0 || v == "" {
			return errors.New("want a URL")
		}
		for _, part := range parts {
			if err := ValidateURL(part, schemes...); err != nil {
				return err
			}
		}
		*p = v
		return nil
	})
}

// Load parses every bound variable. Call it after fs.Parse.
func (s *Set) Load() error {
	var errs []error
	for _, b := range s.binds {
		if err := b(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SplitList splits a comma-separated list, trimming spaces and dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// ValidateAddr checks a host:port listen address (port 0 allowed for tests).
func ValidateAddr(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return errors.New("want a port between 0 and 65535")
	}
	return nil
}

// ValidateURL checks that v parses as an absolute URL with one of schemes and a host.
func ValidateURL(v string, schemes ...string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("want a URL like %s://host:port", schemes[0])
	}
	for _, sc := range schemes {
		if u.Scheme == sc {
			return nil
		}
	}
	return fmt.Errorf("scheme %q not supported, want one of %s", u.Scheme, strings.Join(schemes, ", "))
}
