package retry

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with jitter: attempt n waits Min
// doubled n-1 times, capped at Max, drawn at random from the upper half
// of that so that many clients (replicas, sites after an outage) do not
// retry in step, while the wait never drops below half the nominal one.
//
// The zero value waits nothing; Min > Max is treated as Max.
type Backoff struct {
	Min, Max time.Duration
}

// Nominal is the wait before attempt n (1 = the first retry) without
// jitter: Min<<(n-1), capped at Max. n < 1 counts as 1.
func (b Backoff) Nominal(n int) time.Duration {
	if b.Max <= 0 {
		return 0
	}
	if n < 1 {
		n = 1
	}
	d := b.Max
	if n <= 62 && b.Min > 0 {
		if e := b.Min << (n - 1); e > 0 && e < d && e>>(n-1) == b.Min {
			d = e
		}
	}
	return d
}

// Delay is Nominal(n) with jitter: uniform in [Nominal/2, Nominal].
func (b Backoff) Delay(n int) time.Duration {
	d := b.Nominal(n)
	half := d / 2
	return half + rand.N(d-half+1)
}
