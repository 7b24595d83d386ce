package phabricator

// The small typed Conduit client; the usual Go client is not available
// from the module proxy.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prophet-sync/prophet/foreign"
)

// Client calls Conduit methods on one server with one API token.
type Client struct {
	base  string // https://HOST/ (the install's root)
	token string
	hc    *http.Client
	mu    sync.Mutex
	calls map[string]int
	date  time.Time // the server's clock, from its last answer's Date
}

// Calls is how many calls were made, by method.
func (c *Client) Calls() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// Requests is how many calls were made.
func (c *Client) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

// ServerTime is the server's clock at its last answer (its Date header;
// zero: none yet).
func (c *Client) ServerTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.date
}

// NewClient makes a client for the install at base (its web root).
// transport carries the requests under the retries (nil: the default).
func NewClient(base, token string, transport http.RoundTripper) *Client {
	if transport == nil {
		transport = http.DefaultTransport
	}
	return &Client{
		base:  strings.TrimRight(base, "/") + "/",
		token: token,
		hc:    &http.Client{Transport: &foreign.Retry{Next: transport, Attempts: 4, PerTry: time.Minute}},
		calls: map[string]int{},
	}
}

// Error is a Conduit error answer: error_code and error_info.
type Error struct {
	Method string
	Code   string
	Info   string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("phabricator: %s: %s: %s", e.Method, e.Code, e.Info)
	switch {
	case e.Code == "ERR-INVALID-AUTH":
		msg += " (Phabricator refused the API token: set PROPHET_PHABRICATOR_TOKEN to a valid one, from Settings > Conduit API Tokens)"
	case e.Unknown():
		msg += " (the server is too old for this method: it needs a Phabricator or Phorge with the *.search Conduit methods)"
	}
	return msg
}

// Unknown says whether the error is the server not having the method.
func (e *Error) Unknown() bool {
	return e.Code == "ERR-CONDUIT-CALL" && strings.Contains(e.Info, "does not exist")
}

// ErrAuth is matched (errors.Is) by a refused token.
var ErrAuth = errors.New("phabricator: the API token was refused")

func (e *Error) Is(target error) bool { return target == ErrAuth && e.Code == "ERR-INVALID-AUTH" }

// answer is Conduit's envelope.
type answer struct {
	Result    json.RawMessage `json:"result"`
	ErrorCode *string         `json:"error_code"`
	ErrorInfo *string         `json:"error_info"`
}

// Call calls method with params and decodes its result into out (when not
// nil). Conduit answers 200 with error_code set for its errors: those are
// *Error.
func (c *Client) Call(ctx context.Context, method string, params map[string]any, out any) error {
	p := map[string]any{"__conduit__": map[string]any{"token": c.token}}
	for k, v := range params {
		p[k] = v
	}
	pj, err := json.Marshal(p)
	if err != nil {
		return err
	}
	form := url.Values{"params": {string(pj)}, "output": {"json"}, "__conduit__": {"1"}}
	body := []byte(form.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"api/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("phabricator: cannot reach Phabricator at %s (%w): check the address, and that the server runs; nothing here was lost (a write whose answer was lost is looked for by the next push), run the command again", c.base, err)
	}
	defer resp.Body.Close()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.mu.Lock()
		c.date = d
		c.mu.Unlock()
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("phabricator: %s: reading the answer: %w", method, err)
	}
	if resp.StatusCode >= 500 {
		return fmt.Errorf("phabricator: %s: %s answered %s: the server is down or overloaded; try again later (nothing here was lost)", method, c.base, resp.Status)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("phabricator: %s: %s answered %s, not Conduit's 200 (is %s a Phabricator?)", method, c.base, resp.Status, c.base)
	}
	var a answer
	if err := json.Unmarshal(data, &a); err != nil {
		return fmt.Errorf("phabricator: %s: %s did not answer Conduit's JSON (is it a Phabricator's web root?): %w", method, c.base, err)
	}
	if a.ErrorCode != nil && *a.ErrorCode != "" {
		e := &Error{Method: method, Code: *a.ErrorCode}
		if a.ErrorInfo != nil {
			e.Info = *a.ErrorInfo
			if c.token != "" {
				// Phabricator quotes a malformed token back: never print it.
				e.Info = strings.ReplaceAll(e.Info, c.token, "[the token]")
			}
		}
		return e
	}
	if out == nil || len(a.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(a.Result, out); err != nil {
		return fmt.Errorf("phabricator: %s: its result is not the JSON expected: %w", method, err)
	}
	return nil
}

// Cursor is a search's paging cursor.
type Cursor struct {
	Limit int     `json:"limit"`
	After *string `json:"after"`
}

// Page is one page of a *.search method's results.
type Page[T any] struct {
	Data   []T    `json:"data"`
	Cursor Cursor `json:"cursor"`
}

// errStop, returned by a Search callback, ends the search early (not an
// error).
var errStop = errors.New("phabricator: search stopped")

// Search calls a *.search method and follows its cursor to the end (or
// until fn returns errStop), calling fn for each result in the order the
// server gives them.
func Search[T any](ctx context.Context, c *Client, method string, params map[string]any, fn func(T) error) error {
	p := map[string]any{}
	for k, v := range params {
		p[k] = v
	}
	for {
		var pg Page[T]
		if err := c.Call(ctx, method, p, &pg); err != nil {
			return err
		}
		for _, item := range pg.Data {
			if err := fn(item); err != nil {
				if err == errStop {
					return nil
				}
				return err
			}
		}
		if pg.Cursor.After == nil || *pg.Cursor.After == "" || len(pg.Data) == 0 {
			return nil
		}
		p["after"] = *pg.Cursor.After
	}
}
