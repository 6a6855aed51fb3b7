package webhook

import (
	"time"

	"github.com/talim/realtime/pkg/config"
)

// Config configures the dispatcher and the WebhookService (docs/operations.md
// "Webhooks").
type Config struct {
	// Dispatch runs the dispatcher in this process.
	Dispatch bool
	// AllowPrivate allows URLs on loopback, private and link-local addresses
	// (development and tests); production leaves it off.
	AllowPrivate bool
	// Poll is how often the dispatcher looks for due entries.
	Poll time.Duration
	// Timeout bounds one delivery attempt (Standard Webhooks suggests 15-30s).
	Timeout time.Duration
	// Lease is how long an instance owns a subscription's deliveries without
	// renewing; at least twice Timeout.
	Lease time.Duration
	// MaxAttempts and MaxAge bound the retries of one entry; past either it is
	// dead-lettered.
	MaxAttempts int
	MaxAge      time.Duration
	// Concurrency bounds the subscriptions delivered to at once by one instance.
	Concurrency int
	// RotationGrace is how long a rotated-out secret keeps signing.
	RotationGrace time.Duration
	// Refresh bounds how stale a producer's copy of the subscriptions may be.
	Refresh time.Duration
}

// Defaults.
const (
	DefaultPoll          = time.Second
	DefaultTimeout       = 15 * time.Second
	DefaultLease         = time.Minute
	DefaultMaxAttempts   = 50
	DefaultMaxAge        = 72 * time.Hour
	DefaultConcurrency   = 16
	DefaultRotationGrace = 24 * time.Hour
)

// Register binds the configuration to flags and environment variables.
func (c *Config) Register(s *config.Set) {
	s.Bool(&c.Dispatch, "webhook-dispatch", "TALIM_WEBHOOK_DISPATCH", true, "deliver webhooks from this process")
	s.Bool(&c.AllowPrivate, "webhook-allow-private", "TALIM_WEBHOOK_ALLOW_PRIVATE", false,
		"allow webhook URLs on loopback and private addresses (development only)")
	s.Duration(&c.Poll, "webhook-poll", "TALIM_WEBHOOK_POLL", DefaultPoll, "how often due webhook deliveries are looked for")
	s.Duration(&c.Timeout, "webhook-timeout", "TALIM_WEBHOOK_TIMEOUT", DefaultTimeout, "timeout of one webhook delivery attempt")
	s.Duration(&c.Lease, "webhook-lease", "TALIM_WEBHOOK_LEASE", DefaultLease, "lease of a subscription's deliveries (>= 2 x timeout)")
	s.Int(&c.MaxAttempts, "webhook-max-attempts", "TALIM_WEBHOOK_MAX_ATTEMPTS", DefaultMaxAttempts, 1, "attempts before a webhook is dead-lettered")
	s.Duration(&c.MaxAge, "webhook-max-age", "TALIM_WEBHOOK_MAX_AGE", DefaultMaxAge, "age after which a failing webhook is dead-lettered")
	s.Int(&c.Concurrency, "webhook-concurrency", "TALIM_WEBHOOK_CONCURRENCY", DefaultConcurrency, 1, "subscriptions delivered to at once")
	s.Duration(&c.RotationGrace, "webhook-rotation-grace", "TALIM_WEBHOOK_ROTATION_GRACE", DefaultRotationGrace,
		"how long a rotated-out webhook secret keeps signing")
	s.Duration(&c.Refresh, "webhook-refresh", "TALIM_WEBHOOK_REFRESH", DefaultRefresh, "how stale a producer's copy of the subscriptions may be")
}

// withDefaults fills zero fields.
func (c Config) withDefaults() Config {
	set := func(p *time.Duration, d time.Duration) {
		if *p == 0 {
			*p = d
		}
	}
	set(&c.Poll, DefaultPoll)
	set(&c.Timeout, DefaultTimeout)
	set(&c.Lease, DefaultLease)
	set(&c.MaxAge, DefaultMaxAge)
	set(&c.RotationGrace, DefaultRotationGrace)
	set(&c.Refresh, DefaultRefresh)
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// Validate checks the configuration; errors name the variable.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Poll < 0 || c.Timeout < 0 || c.Lease < 0 || c.MaxAge < 0 || c.RotationGrace < 0 || c.Refresh < 0:
		return config.Errorf("TALIM_WEBHOOK_*", "durations must be positive")
	case c.Lease < 2*c.Timeout:
		return config.Errorf("TALIM_WEBHOOK_LEASE", "must be at least twice TALIM_WEBHOOK_TIMEOUT (%v)", c.Timeout)
	case c.MaxAttempts < 1:
		return config.Errorf("TALIM_WEBHOOK_MAX_ATTEMPTS", "must be at least 1")
	case c.Concurrency < 1:
		return config.Errorf("TALIM_WEBHOOK_CONCURRENCY", "must be at least 1")
	}
	return nil
}
