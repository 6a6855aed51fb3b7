package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// tokenExpiry reads the exp claim of a JWT without verifying it (the server does).
func tokenExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp <= 0 {
		return time.Time{}, false
	}
	sec := int64(claims.Exp)
	return time.Unix(sec, int64((claims.Exp-float64(sec))*1e9)), true
}

// refreshDelay is how long to wait before refreshing a token expiring at exp: the
// earlier of RefreshBefore before exp and four fifths of the remaining lifetime.
func refreshDelay(now, exp time.Time, before time.Duration) time.Duration {
	left := exp.Sub(now)
	if left <= 0 {
		return 0
	}
	return left - min(before, left/5)
}

// scheduleRefreshLocked arms the one timer a client with a TokenFunc holds: it fires
// before the current token expires and sends auth-refresh with a new one.
func (c *Client) scheduleRefreshLocked() {
	if c.tokenTimer != nil {
		c.tokenTimer.Stop()
		c.tokenTimer = nil
	}
	if c.opts.TokenFunc == nil || c.closed || c.conn == nil {
		return
	}
	exp, ok := tokenExpiry(c.token)
	if !ok {
		return
	}
	cn := c.conn
	c.tokenTimer = time.AfterFunc(refreshDelay(time.Now(), exp, c.opts.RefreshBefore), func() { c.refresh(cn, exp) })
}

func (c *Client) refresh(cn *Conn, oldExp time.Time) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.CommandTimeout)
	defer cancel()
	tok, err := c.opts.TokenFunc(ctx)
	if err == nil {
		_, err = cn.Request(ctx, "auth-refresh", map[string]string{"token": tok})
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != cn || c.closed {
		return
	}
	if err != nil {
		c.opts.Logger.Warn("client: token refresh failed", "err", err)
		// Try again halfway to the old expiry; a connection that outlives its
		// token is closed with 4001 and reconnects with a fresh one.
		if left := time.Until(oldExp); left > time.Second {
			c.tokenTimer = time.AfterFunc(left/2, func() { c.refresh(cn, oldExp) })
		}
		return
	}
	c.token = tok
	c.opts.Logger.Debug("client: token refreshed")
	c.scheduleRefreshLocked()
}
