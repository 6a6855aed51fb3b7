package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
)

// ErrNotLoopback means a target or source address is not a loopback address. The bench
// never generates load against anything but this machine.
var ErrNotLoopback = errors.New("bench: only loopback addresses are allowed (127.0.0.0/8, ::1, localhost)")

// CheckLoopbackHost accepts an IP literal in 127.0.0.0/8 or ::1, or "localhost". Host
// names are not resolved: a name other than localhost is refused.
func CheckLoopbackHost(host string) error {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return nil
	}
	ip, err := netip.ParseAddr(h)
	if err != nil || !ip.Unmap().IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, host)
	}
	return nil
}

// CheckLoopbackAddr checks a host:port.
func CheckLoopbackAddr(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%w: %q: %v", ErrNotLoopback, hostport, err)
	}
	return CheckLoopbackHost(host)
}

// CheckLoopbackURL checks an http(s)/ws(s)/nats URL's host.
func CheckLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%w: %q: not a URL with a host", ErrNotLoopback, raw)
	}
	return CheckLoopbackHost(u.Hostname())
}

// SourceIP returns the k-th source address of the workers: 127.0.0.2, 127.0.0.3, …
func SourceIP(k int) (string, error) {
	if k < 0 || k > 250 {
		return "", fmt.Errorf("bench: worker index %d out of range 0..250", k)
	}
	return fmt.Sprintf("127.0.0.%d", k+2), nil
}
