package foreign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/prophet-sync/prophet/internal/backoff"
)

// Retry is an http.RoundTripper that retries what a remote refuses for now:
// 429 (honouring Retry-After), and, for requests that are safe to repeat
// (GET, HEAD, PUT, DELETE: a POST may have been applied before a 503 or a
// broken connection), 503 (honouring Retry-After), 502, 504, timeouts and
// broken connections. It waits with capped exponential backoff
// and jitter, never longer than the request's context allows.
type Retry struct {
	Next http.RoundTripper // default http.DefaultTransport
	// Attempts bounds the tries of one request (default 6).
	Attempts int
	// Base and Max bound the backoff between tries (default 500ms, 30s);
	// a Retry-After longer than MaxWait (default 5m) fails at once.
	Base, Max, MaxWait time.Duration
	// PerTry bounds each try, from sending to the end of the answer's
	// body (0: no bound). Use it rather than http.Client.Timeout, which
	// would count the waits between tries too.
	PerTry time.Duration
	Logger *slog.Logger
	// Sleep waits d or until ctx ends (tests replace it).
	Sleep func(ctx context.Context, d time.Duration) error
}

// RateLimitError is a request the remote kept refusing for its rate limit
// or load: Reset, when known, is when it will take requests again.
type RateLimitError struct {
	URL    string
	Status int
	Reset  time.Time
	Body   string
}

func (e *RateLimitError) Error() string {
	msg := fmt.Sprintf("%s answered %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if !e.Reset.IsZero() {
		msg += fmt.Sprintf("; it takes requests again at %s (in %s)", e.Reset.Format(time.RFC3339), time.Until(e.Reset).Round(time.Second))
	}
	return msg + "; nothing was lost: run the command again then"
}

func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date) against
// now; ok false when absent or malformed.
func RetryAfter(h string, now time.Time) (time.Duration, bool) { return backoff.RetryAfter(h, now) }

func (r *Retry) RoundTrip(req *http.Request) (*http.Response, error) {
	next := r.Next
	if next == nil {
		next = http.DefaultTransport
	}
	attempts, base, maxB, maxWait := r.Attempts, r.Base, r.Max, r.MaxWait
	if attempts <= 0 {
		attempts = 6
	}
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	if maxB <= 0 {
		maxB = 30 * time.Second
	}
	if maxWait <= 0 {
		maxWait = 5 * time.Minute
	}
	sleep := r.Sleep
	if sleep == nil {
		sleep = backoff.Sleep
	}
	ctx := req.Context()
	for try := 1; ; try++ {
		if try > 1 && req.Body != nil {
			if req.GetBody == nil {
				return nil, fmt.Errorf("foreign: cannot retry %s %s: its body cannot be read again", req.Method, req.URL.Redacted())
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(ctx)
			req.Body = body
		}
		sent := req
		cancel := context.CancelFunc(func() {})
		if r.PerTry > 0 {
			var tctx context.Context
			tctx, cancel = context.WithTimeout(ctx, r.PerTry)
			sent = req.WithContext(tctx)
		}
		resp, err := next.RoundTrip(sent)
		wait := backoff.Delay(base, maxB, try)
		switch {
		case err != nil:
			if ctx.Err() != nil || !idempotent(req.Method) || !transient(err) || try >= attempts {
				cancel()
				return nil, err
			}
			r.log("retrying after a network error", req, try, wait, "error", err)
		case resp.StatusCode == http.StatusTooManyRequests ||
			((resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout) && idempotent(req.Method)):
			ra, has := RetryAfter(resp.Header.Get("Retry-After"), time.Now())
			if has {
				wait = ra
			}
			if try >= attempts || wait > maxWait {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				cancel()
				e := &RateLimitError{URL: req.URL.Redacted(), Status: resp.StatusCode, Body: string(body)}
				if has {
					e.Reset = time.Now().Add(ra)
				}
				return nil, e
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			r.log("retrying: the remote asked to wait", req, try, wait, "status", resp.StatusCode)
		default:
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		cancel()
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// cancelOnClose ends a try's context when its answer has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func (r *Retry) log(msg string, req *http.Request, try int, wait time.Duration, kv ...any) {
	if r.Logger == nil {
		return
	}
	r.Logger.Info(msg, append([]any{"method", req.Method, "url", req.URL.Redacted(), "try", try, "wait", wait}, kv...)...)
}

// Transient says whether err is the remote being unreachable or refusing
// for now (after the retries): an op that meets it stays queued for the
// next push instead of failing.
func Transient(err error) bool {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		return true
	}
	var ue *url.Error
	if errors.As(err, &ue) && !errors.Is(err, context.Canceled) {
		return true
	}
	return transient(err)
}

// transient says whether a transport error may pass if tried again.
func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
