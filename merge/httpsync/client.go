package httpsync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/internal/backoff"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/resolution"
)

// ClientOptions tune a Remote. The zero value is usable.
type ClientOptions struct {
	// HTTPClient defaults to one with connect and TLS handshake timeouts
	// and no overall timeout (streams last as long as they need; see
	// IdleTimeout).
	HTTPClient *http.Client
	// Attempts is how many times a request is tried, and how many times in
	// a row a stream is resumed without progress, before giving up.
	// Default 5.
	Attempts int
	// Backoff is the first wait before a retry; it doubles each time (with
	// jitter) up to MaxBackoff. Defaults 200 ms and 5 s. A 429 or 503's
	// Retry-After is honoured up to a minute.
	Backoff, MaxBackoff time.Duration
	// IdleTimeout is how long one read of a response may wait for the
	// server before the connection counts as broken. Default 60 s (the
	// server sends a progress frame every second while it skips).
	IdleTimeout time.Duration
	// RequestTimeout bounds the small requests (info, tickets). Default 30 s.
	RequestTimeout time.Duration
	// Logger defaults to a discard logger.
	Logger *slog.Logger
	// Token, when set, is sent with every request as Authorization:
	// Bearer Token. A server that wants one answers 401 without it (an
	// *Error with Status 401), and 403 to a push with a read token.
	Token string
}

func (o *ClientOptions) defaults() ClientOptions {
	var c ClientOptions
	if o != nil {
		c = *o
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout: 10 * time.Second,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     90 * time.Second,
		}}
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Remote is a replica served over HTTP (prophet serve): a merge.Source and
// a merge.FilteredSource, so a pull receives only what it lacks.
type Remote struct {
	base *url.URL
	o    ClientOptions
}

var _ merge.FilteredSource = (*Remote)(nil)

// Dial checks that rawURL serves a replica (GET /v1/info) and returns it.
func Dial(ctx context.Context, rawURL string, opts *ClientOptions) (*Remote, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpsync: %q is not an http:// or https:// URL", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	r := &Remote{base: u, o: opts.defaults()}
	if _, err := r.Info(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// authorize sets the request's bearer token, if there is one.
func (r *Remote) authorize(req *http.Request) {
	if r.o.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.Token)
	}
}

// URL is the server's base URL.
func (r *Remote) URL() string { return r.base.String() }

func (r *Remote) endpoint(path string, q url.Values) string {
	u := *r.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

// Info is GET /v1/info.
func (r *Remote) Info(ctx context.Context) (merge.Info, error) {
	var j infoJSON
	if err := r.getJSON(ctx, "/v1/info", nil, &j); err != nil {
		return merge.Info{}, err
	}
	return merge.Info{Replica: j.Replica, Database: j.Database, Latest: j.Latest}, nil
}

func (r *Remote) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	ctx, cancel := context.WithTimeout(ctx, r.o.RequestTimeout)
	defer cancel()
	resp, err := r.do(ctx, http.MethodGet, r.endpoint(path, q), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("httpsync: %s: reading the answer: %w", path, err)
	}
	return nil
}

// Error is an error answer of the server.
type Error struct {
	Status int
	Code   string // malformed, too_large, conflict, refused, other_database, …
	Msg    string
}

func (e *Error) Error() string { return fmt.Sprintf("the server answered %d: %s", e.Status, e.Msg) }

// Unwrap gives the merge's refusals back their identity.
func (e *Error) Unwrap() error {
	switch e.Code {
	case "other_database":
		return merge.ErrOtherDatabase
	case "same_replica":
		return merge.ErrSameReplica
	}
	return nil
}

// retryable reports whether a failed attempt is worth another: the
// connection, or the server, failed; not the request.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !untrusted(err)
	}
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
}

// do sends a request, retrying connection errors, 5xx and 429 with
// exponential backoff and jitter (honouring Retry-After). body is resent
// whole on a retry. A non-2xx final answer is an *Error.
func (r *Remote) do(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		r.authorize(req)
		resp, err := r.o.HTTPClient.Do(req)
		if err == nil && resp.StatusCode/100 == 2 {
			return resp, nil
		}
		if attempt >= r.o.Attempts || !retryable(resp, err) || ctx.Err() != nil {
			if err != nil {
				return nil, fmt.Errorf("httpsync: %w", err)
			}
			return nil, answerError(resp)
		}
		wait := r.backoff(attempt)
		if err == nil {
			if ra := retryAfter(resp); ra > 0 {
				wait = ra
			}
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			r.o.Logger.Warn("retrying", "url", u, "status", resp.StatusCode, "attempt", attempt, "wait", wait)
		} else {
			r.o.Logger.Warn("retrying", "url", u, "err", err, "attempt", attempt, "wait", wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// answerError reads an error answer and closes it.
func answerError(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var j errorJSON
	if json.Unmarshal(b, &j) != nil || j.Error == "" {
		j.Error = strings.TrimSpace(string(b))
		if j.Error == "" {
			j.Error = resp.Status
		}
	}
	e := &Error{Status: resp.StatusCode, Code: j.Code, Msg: oneLine(j.Error)}
	if j.Conflict != nil {
		return &conflictError{e: e, ue: &merge.UnresolvedError{Conflict: j.Conflict.conflict()}}
	}
	return e
}

// conflictError is a 409 with the conflict: errors.As finds both the
// *merge.UnresolvedError (as for a local push) and the *Error.
type conflictError struct {
	e  *Error
	ue *merge.UnresolvedError
}

func (c *conflictError) Error() string   { return c.ue.Error() }
func (c *conflictError) Unwrap() []error { return []error{c.ue, c.e} }

func (r *Remote) backoff(attempt int) time.Duration {
	return backoff.Delay(r.o.Backoff, r.o.MaxBackoff, attempt)
}

// retryAfter is the answer's Retry-After, up to a minute (0: none).
func retryAfter(resp *http.Response) time.Duration {
	d, _ := backoff.RetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return min(d, time.Minute)
}

func sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

// openStream POSTs req to path and returns a frame reader over the answer,
// whose reads fail if the server is silent for IdleTimeout.
func (r *Remote) openStream(ctx context.Context, path string, req any) (*frameReader, func(), error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	resp, err := r.do(ctx, http.MethodPost, r.endpoint(path, nil), body)
	if err != nil {
		cancel(nil)
		return nil, nil, err
	}
	idle := &idleReader{r: resp.Body, d: r.o.IdleTimeout, cancel: cancel}
	return newFrameReader(idle), func() { resp.Body.Close(); cancel(nil) }, nil
}

// idleReader cancels the request when one Read waits longer than d.
type idleReader struct {
	r      io.Reader
	d      time.Duration
	cancel context.CancelCauseFunc
}

var errIdle = errors.New("the server sent nothing for too long")

func (i *idleReader) Read(p []byte) (int, error) {
	t := time.AfterFunc(i.d, func() { i.cancel(errIdle) })
	n, err := i.r.Read(p)
	if !t.Stop() {
		err = fmt.Errorf("%w (%v)", errIdle, err)
	}
	return n, err
}

// Resolutions is POST /v1/resolutions. A broken stream is resumed after
// the last decision received, so fn never sees one twice.
func (r *Remote) Resolutions(ctx context.Context, have map[uuid.UUID]uint64, fn func(resolution.Decision) error) error {
	h := map[uuid.UUID]uint64{}
	for k, v := range have {
		h[k] = v
	}
	failures := 0
	for {
		progressed := false
		err := r.resolutionsOnce(ctx, h, func(d resolution.Decision) error {
			if d.Seq <= h[d.Origin] {
				return fmt.Errorf("%w: the server sent decision %s@%d, which the request said is held", errMalformed, d.Origin, d.Seq)
			}
			if err := fn(d); err != nil {
				return fnError{err}
			}
			h[d.Origin] = d.Seq
			progressed = true
			return nil
		})
		var fe fnError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &fe):
			return fe.err
		case !r.resumable(ctx, err):
			return fmt.Errorf("httpsync: resolutions from %s: %w", r.base.Redacted(), err)
		}
		if progressed {
			failures = 0
		}
		if failures++; failures >= r.o.Attempts {
			return fmt.Errorf("httpsync: resolutions from %s: gave up after %d attempts: %w", r.base.Redacted(), failures, err)
		}
		r.o.Logger.Warn("resolution stream broken; resuming", "url", r.base.Redacted(), "err", err, "attempt", failures)
		if err := sleep(ctx, r.backoff(failures)); err != nil {
			return err
		}
	}
}

// fnError is the callback's own error: returned as it is, never retried.
type fnError struct{ err error }

func (f fnError) Error() string { return f.err.Error() }

// resumable reports whether a broken stream is worth resuming: the
// connection broke or went silent, not the server refusing or failing.
func (r *Remote) resumable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var e *Error
	var se serverError
	if errors.As(err, &e) || errors.As(err, &se) {
		return false
	}
	if errors.Is(err, errMalformed) && !errors.Is(err, errTorn) {
		return false
	}
	return true
}

// serverError is an error frame: the server failed mid-stream.
type serverError struct{ msg string }

func (s serverError) Error() string { return "the server failed: " + s.msg }

func (r *Remote) resolutionsOnce(ctx context.Context, have map[uuid.UUID]uint64, fn func(resolution.Decision) error) error {
	fr, done, err := r.openStream(ctx, "/v1/resolutions", resolutionsRequest{Have: have})
	if err != nil {
		return err
	}
	defer done()
	var n uint64
	for {
		k, err := fr.kind()
		if err != nil {
			return err
		}
		switch k {
		case kindItem:
			b, err := fr.bytes(maxItem)
			if err != nil {
				return err
			}
			d, err := resolution.Decode(b)
			if err != nil {
				return fmt.Errorf("%w: a decision: %w", errMalformed, err)
			}
			n++
			if err := fn(*d); err != nil {
				return err
			}
		case kindEnd:
			total, err := fr.uvarint()
			if err != nil {
				return err
			}
			if total != n {
				return fmt.Errorf("%w: the end frame counts %d decisions, %d came", errMalformed, total, n)
			}
			return nil
		case kindError:
			msg, err := fr.bytes(1 << 20)
			if err != nil {
				return err
			}
			return serverError{string(msg)}
		default:
			return fmt.Errorf("%w: frame kind %d in a resolution stream", errMalformed, k)
		}
	}
}

// Changesets is every entry after `after` (nothing filtered).
func (r *Remote) Changesets(ctx context.Context, after uint64, fn func(seq uint64, raw []byte) error) error {
	_, err := r.ChangesetsFor(ctx, after, nil, uuid.Nil, 0, fn)
	return err
}

// ChangesetsFor is POST /v1/changesets: the server sends only what the
// puller lacks. A stream that breaks before its end frame is resumed after
// the last entry received (or the last progress frame), with backoff, up to
// Attempts times in a row without progress: fn never sees an entry twice.
func (r *Remote) ChangesetsFor(ctx context.Context, after uint64, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64, fn func(seq uint64, raw []byte) error) (uint64, error) {
	t := map[uuid.UUID]uint64{}
	for k, v := range tickets {
		t[k] = v
	}
	cur := after
	failures := 0
	for {
		progressed := false
		last, err := r.changesetsOnce(ctx, changesetsRequest{After: cur, Tickets: t, Self: self, SelfLatest: selfLatest}, func(seq uint64, raw []byte) error {
			if seq <= cur {
				return fmt.Errorf("%w: the server sent entry %d after %d", errMalformed, seq, cur)
			}
			if raw != nil {
				if err := fn(seq, raw); err != nil {
					return fnError{err}
				}
			}
			cur, progressed = seq, true
			return nil
		})
		var fe fnError
		switch {
		case err == nil:
			if last < cur {
				return cur, fmt.Errorf("httpsync: %w: the stream ends at %d, before %d", errMalformed, last, cur)
			}
			return last, nil
		case errors.As(err, &fe):
			return cur, fe.err
		case !r.resumable(ctx, err):
			return cur, fmt.Errorf("httpsync: changesets from %s: %w", r.base.Redacted(), err)
		}
		if progressed {
			failures = 0
		}
		if failures++; failures >= r.o.Attempts {
			return cur, fmt.Errorf("httpsync: changesets from %s: gave up after %d attempts: %w", r.base.Redacted(), failures, err)
		}
		r.o.Logger.Warn("changeset stream broken; resuming", "url", r.base.Redacted(), "after", cur, "err", err, "attempt", failures)
		if err := sleep(ctx, r.backoff(failures)); err != nil {
			return cur, err
		}
	}
}

// changesetsOnce reads one changeset stream; fn gets entries, and progress
// frames with raw nil.
func (r *Remote) changesetsOnce(ctx context.Context, req changesetsRequest, fn func(seq uint64, raw []byte) error) (uint64, error) {
	fr, done, err := r.openStream(ctx, "/v1/changesets", req)
	if err != nil {
		return 0, err
	}
	defer done()
	return readChangesets(fr, fn)
}

// readChangesets reads a changeset section up to its end frame and returns
// the end frame's number.
func readChangesets(fr *frameReader, fn func(seq uint64, raw []byte) error) (uint64, error) {
	for {
		k, err := fr.kind()
		if err != nil {
			return 0, err
		}
		switch k {
		case kindItem:
			seq, err := fr.uvarint()
			if err != nil {
				return 0, err
			}
			raw, err := fr.bytes(maxItem)
			if err != nil {
				return 0, err
			}
			if err := fn(seq, raw); err != nil {
				return 0, err
			}
		case kindProgress:
			seq, err := fr.uvarint()
			if err != nil {
				return 0, err
			}
			if err := fn(seq, nil); err != nil {
				return 0, err
			}
		case kindEnd:
			return fr.uvarint()
		case kindError:
			msg, err := fr.bytes(1 << 20)
			if err != nil {
				return 0, err
			}
			return 0, serverError{string(msg)}
		default:
			return 0, fmt.Errorf("%w: frame kind %d in a changeset stream", errMalformed, k)
		}
	}
}

func hexDecode32(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return out, fmt.Errorf("not 32 bytes of hex")
	}
	copy(out[:], b)
	return out, nil
}

// Tickets is what GET /v1/tickets says: the server's replica, its merge
// tickets and resolution database tickets, and its position in a peer's
// log.
type Tickets struct {
	Info        merge.Info
	Tickets     map[uuid.UUID]uint64
	Resolutions map[uuid.UUID]uint64
	Position    uint64 // in peer's log
}

// Tickets is GET /v1/tickets: what a push to the server would send is what
// these do not cover (a dry run counts it).
func (r *Remote) Tickets(ctx context.Context, peer uuid.UUID) (Tickets, error) {
	var t ticketsJSON
	if err := r.getJSON(ctx, "/v1/tickets", url.Values{"peer": {peer.String()}}, &t); err != nil {
		return Tickets{}, err
	}
	return Tickets{Info: merge.Info{Replica: t.Replica, Database: t.Database, Latest: t.Latest},
		Tickets: t.Tickets, Resolutions: t.Resolutions, Position: t.Position}, nil
}

// untrusted reports whether err is a TLS certificate the client does not
// trust, or a server that does not speak TLS: asking again cannot help.
func untrusted(err error) bool {
	var (
		cv *tls.CertificateVerificationError
		rh tls.RecordHeaderError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &cv) || errors.As(err, &rh) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
