package webhook

import (
	"math/rand/v2"
	"time"
)

// Backoff is an exponential retry schedule with jitter: the delay after the n-th
// failed attempt is drawn uniformly from [d/2, d] where d = min(Max, Base·2^(n-1)).
type Backoff struct {
	Base, Max time.Duration
	// Rand returns a float in [0,1); nil uses math/rand/v2.
	Rand func() float64
}

// DefaultBackoff starts at 5s and caps at one hour (Standard Webhooks suggests a
// schedule spanning days; Config.MaxAge bounds the total).
var DefaultBackoff = Backoff{Base: 5 * time.Second, Max: time.Hour}

// Delay returns the wait after the n-th failed attempt (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	return d/2 + time.Duration(r()*float64(d/2))
}
