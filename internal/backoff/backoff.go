// Package backoff holds what every retrying client of prophet's shares:
// capped exponential backoff with jitter, Retry-After, and a sleep that
// ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Delay is the wait before try attempt+1 (attempt counts from 1): base
// doubled per attempt, capped at max, then jittered to between half and
// all of it.
func Delay(base, max time.Duration, attempt int) time.Duration {
	d := base << min(attempt-1, 20)
	if d > max || d <= 0 {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) against
// now; ok false when absent or malformed. A date in the past is 0.
func RetryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// Sleep waits d, or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
