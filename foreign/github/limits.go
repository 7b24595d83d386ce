package github

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/internal/backoff"
)

// limiter sits under go-github and keeps GitHub's rate limits:
//
//   - primary: it keeps the last x-ratelimit-remaining and -reset it saw;
//     when nothing remains it waits for the reset before it sends, and a
//     403 or 429 with x-ratelimit-remaining 0 waits for the reset and is
//     sent again;
//   - secondary: a 403 or 429 with retry-after waits that long and is sent
//     again.
//
// A wait longer than maxWait is not waited: the request fails with a
// *foreign.RateLimitError that says when GitHub takes requests again.
type limiter struct {
	next    http.RoundTripper
	maxWait time.Duration
	count   func()
	sleep   func(ctx context.Context, d time.Duration) error // tests

	mu        sync.Mutex
	known     bool
	remaining int
	reset     time.Time
}

func (l *limiter) observe(resp *http.Response) {
	rem, err1 := strconv.Atoi(resp.Header.Get("X-Ratelimit-Remaining"))
	reset, err2 := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil {
		return
	}
	l.mu.Lock()
	l.known, l.remaining, l.reset = true, rem, time.Unix(reset, 0)
	l.mu.Unlock()
}

// before is how long to wait before sending: until the reset when the
// primary limit is used up.
func (l *limiter) before(now time.Time) (time.Duration, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.known || l.remaining > 0 || !l.reset.After(now) {
		return 0, time.Time{}
	}
	return l.reset.Sub(now) + time.Second, l.reset
}

func (l *limiter) wait(ctx context.Context, d time.Duration) error {
	if l.sleep != nil {
		return l.sleep(ctx, d)
	}
	return backoff.Sleep(ctx, d)
}

func (l *limiter) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for try := 0; ; try++ {
		if d, reset := l.before(time.Now()); d > 0 {
			if d > l.maxWait {
				return nil, &foreign.RateLimitError{URL: req.URL.Redacted(), Status: http.StatusForbidden, Reset: reset}
			}
			if err := l.wait(ctx, d); err != nil {
				return nil, err
			}
		}
		if try > 0 && req.Body != nil && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
		if l.count != nil {
			l.count()
		}
		resp, err := l.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		l.observe(resp)
		if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
			return resp, nil
		}
		var d time.Duration
		var reset time.Time
		if ra, ok := foreign.RetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			d, reset = max(ra, time.Second), time.Now().Add(ra)
		} else if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
			d, reset = l.before(time.Now())
		} else {
			return resp, nil // a 403 of rights, not of limits
		}
		if d > l.maxWait || try >= 3 {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			return nil, &foreign.RateLimitError{URL: req.URL.Redacted(), Status: resp.StatusCode, Reset: reset}
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := l.wait(ctx, d); err != nil {
			return nil, err
		}
	}
}
