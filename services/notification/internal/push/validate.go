package push

import (
	"crypto/ecdh"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/talim/realtime/pkg/webpush"
)

// Limits of a subscription (docs/protocol.md "Web Push").
const (
	MaxEndpointLen = 1024
	maxKeyLen      = 128 // base64url of 65 bytes is 87 characters
)

// ErrInvalid marks a subscription that fails validation; the message says why.
var ErrInvalid = errors.New("invalid push subscription")

// Policy says which endpoints are acceptable.
type Policy struct {
	// AllowLoopbackHTTP accepts http:// endpoints on loopback addresses and https://
	// on loopback and private addresses (tests, local development). Otherwise only
	// https:// endpoints on public hosts are accepted and dialled.
	AllowLoopbackHTTP bool
}

// Validate checks endpoint and keys as a browser's PushSubscription gives them and
// returns the subscription to store.
func (pol Policy) Validate(endpoint, p256dh, auth string) (Sub, error) {
	if err := pol.checkEndpoint(endpoint); err != nil {
		return Sub{}, err
	}
	if len(p256dh) > maxKeyLen || len(auth) > maxKeyLen {
		return Sub{}, fmt.Errorf("%w: keys are too long", ErrInvalid)
	}
	k, err := webpush.DecodeKey(p256dh)
	if err != nil || len(k) != webpush.PublicKeyLen {
		return Sub{}, fmt.Errorf("%w: keys.p256dh must be a base64url P-256 public key of %d bytes", ErrInvalid, webpush.PublicKeyLen)
	}
	if _, err := ecdh.P256().NewPublicKey(k); err != nil {
		return Sub{}, fmt.Errorf("%w: keys.p256dh is not a point on P-256", ErrInvalid)
	}
	a, err := webpush.DecodeKey(auth)
	if err != nil || len(a) != webpush.AuthLen {
		return Sub{}, fmt.Errorf("%w: keys.auth must be a base64url secret of %d bytes", ErrInvalid, webpush.AuthLen)
	}
	return Sub{ID: SubID(endpoint), Endpoint: endpoint, P256dh: strings.TrimRight(p256dh, "="), Auth: strings.TrimRight(auth, "=")}, nil
}

// CheckEndpoint validates an endpoint alone (remove-push-subscription).
func (pol Policy) CheckEndpoint(endpoint string) error { return pol.checkEndpoint(endpoint) }

func (pol Policy) checkEndpoint(endpoint string) error {
	if endpoint == "" || len(endpoint) > MaxEndpointLen {
		return fmt.Errorf("%w: endpoint must be a URL of 1 to %d bytes", ErrInvalid, MaxEndpointLen)
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%w: endpoint must be an absolute https URL without credentials or fragment", ErrInvalid)
	}
	host := u.Hostname()
	addr, isIP := netip.ParseAddr(host)
	local := host == "localhost" || (isIP == nil && !publicAddr(addr))
	switch {
	case u.Scheme == "https" && (!local || pol.AllowLoopbackHTTP):
		return nil
	case u.Scheme == "http" && pol.AllowLoopbackHTTP && (host == "localhost" || (isIP == nil && addr.IsLoopback())):
		return nil
	case local:
		return fmt.Errorf("%w: endpoint must not be a local or private address", ErrInvalid)
	default:
		return fmt.Errorf("%w: endpoint must use https", ErrInvalid)
	}
}

func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() && !a.IsLinkLocalUnicast()
}

// DialControl refuses connections to non-public addresses, so a host name that
// resolves to an internal address cannot turn pushes into requests to internal
// services. Use it in net.Dialer.Control unless Policy.AllowLoopbackHTTP.
func DialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("push dial %s: %w", address, err)
	}
	if !publicAddr(ap.Addr()) {
		return fmt.Errorf("push dial %s: not a public address", address)
	}
	return nil
}

// NewHTTPClient returns the client pushes are sent with: bounded timeouts and,
// unless pol allows loopback, DialControl.
func NewHTTPClient(pol Policy) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !pol.AllowLoopbackHTTP {
		d.Control = DialControl
	}
	tr := &http.Transport{DialContext: d.DialContext, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 16,
		TLSHandshakeTimeout: 5 * time.Second, ResponseHeaderTimeout: DefaultRequestTimeout, IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: DefaultRequestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
