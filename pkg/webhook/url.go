package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// MaxURLLen bounds a subscription URL.
const MaxURLLen = 2048

// ErrPrivateAddress means a webhook URL resolves to a loopback, private, link-local
// or otherwise non-public address while Config.AllowPrivate is off.
var ErrPrivateAddress = errors.New("webhook: private or loopback address not allowed")

// ValidateURL checks a subscription URL: absolute http or https, a host, no user
// info or fragment, at most MaxURLLen bytes. Without allowPrivate, a literal IP
// host must be public; names are checked again when dialling (DialControl).
func ValidateURL(raw string, allowPrivate bool) error {
	if raw == "" || len(raw) > MaxURLLen {
		return fmt.Errorf("url must be 1..%d bytes", MaxURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url scheme must be http or https, not %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("url needs a host")
	}
	if u.User != nil {
		return errors.New("url must not carry user info")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("url must not have a fragment")
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return ErrPrivateAddress
	}
	if ip, err := netip.ParseAddr(host); err == nil && !publicAddr(ip) {
		return ErrPrivateAddress
	}
	return nil
}

// publicAddr reports whether ip is a global unicast, non-private address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!cgnat.Contains(ip)
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// DialControl refuses connections to non-public addresses; it runs after name
// resolution, so a public name resolving to a private address is refused too.
func DialControl(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrPrivateAddress, address)
	}
	return nil
}

var _ = net.Dialer{ControlContext: DialControl}
