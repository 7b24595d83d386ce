package rt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prophet-sync/prophet/foreign"
)

// Credentials reach RT: a user and password (basic auth), or an auth
// token (RT's "Authorization: token"). User names the account either way:
// the gateway knows its own transactions by it.
type Credentials struct {
	User     string
	Password string
	Token    string
}

// client speaks RT's REST2 API (/REST/2.0/) with retries (foreign.Retry).
type client struct {
	api  string // WEB/REST/2.0
	hc   *http.Client
	cred Credentials
	// requests counts the HTTP requests made (for the benchmarks and the
	// "one cheap request" check).
	requests func()
}

// Error is an answer of RT's that is not a success.
type Error struct {
	Method, URL string
	Status      int
	Message     string
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("rt: %s %s: %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += " (RT refused the credentials: set PROPHET_RT_USER with PROPHET_RT_PASSWORD or PROPHET_RT_TOKEN)"
	case http.StatusForbidden:
		msg += " (the RT user lacks the right for this)"
	}
	return msg
}

var errNotFound = errors.New("rt: not found")

func (e *Error) Is(target error) bool {
	return target == errNotFound && e.Status == http.StatusNotFound
}

func newClient(web string, cred Credentials, timeout time.Duration, count func()) *client {
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return &client{
		api:      strings.TrimRight(web, "/") + "/REST/2.0",
		hc:       &http.Client{Transport: &foreign.Retry{Attempts: 4, PerTry: timeout}},
		cred:     cred,
		requests: count,
	}
}

// do sends one request. body, when not nil, goes as JSON; out, when not
// nil, receives the JSON answer. It returns the answer's headers.
func (c *client) do(ctx context.Context, method, path string, q url.Values, hdr map[string]string, body, out any) (http.Header, error) {
	u := c.api + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }
	}
	req.Header.Set("Accept", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	switch {
	case c.cred.Token != "":
		req.Header.Set("Authorization", "token "+c.cred.Token)
	case c.cred.User != "":
		req.SetBasicAuth(c.cred.User, c.cred.Password)
	}
	if c.requests != nil {
		c.requests()
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var rl *foreign.RateLimitError
		if errors.As(err, &rl) || ctx.Err() != nil {
			return nil, fmt.Errorf("rt: %s %s: %w", method, redact(u), err)
		}
		return nil, fmt.Errorf("rt: cannot reach RT at %s (%w): check the address, and that RT runs there; nothing was lost, run the command again", strings.TrimSuffix(c.api, "/REST/2.0"), err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("rt: %s %s: reading the answer: %w", method, redact(u), err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Method: method, URL: redact(u), Status: resp.StatusCode}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) == nil {
			e.Message = strings.TrimSpace(m.Message)
		} else if len(data) < 300 {
			e.Message = strings.TrimSpace(string(data))
		}
		return resp.Header, e
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			web := strings.TrimSuffix(c.api, "/REST/2.0")
			if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				return resp.Header, fmt.Errorf("rt: %s answered %s %s with a web page, not RT's REST2 API: check the address (RT's web root, as in a browser: rt:http://HOST[:PORT][/PATH]/?queue=NAME)", web, method, redact(u))
			}
			return resp.Header, fmt.Errorf("rt: %s %s: the answer is not the JSON expected (is this RT 5's REST2 at %s?): %w", method, redact(u), c.api, err)
		}
	}
	return resp.Header, nil
}

func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	return p.Redacted()
}

// ref is REST2's link to another object: {"type","id","_url"}.
type ref struct {
	Type string `json:"type"`
	ID   flexID `json:"id"`
}

// flexID is an id REST2 writes as a string or a number.
type flexID string

func (f *flexID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n.String())
	return nil
}

func (f flexID) uint() uint64 {
	n, _ := strconv.ParseUint(string(f), 10, 64)
	return n
}

// txn is a transaction as /transactions and /ticket/N/history give it with
// fields=txnFields.
type txn struct {
	ID   flexID `json:"id"`
	Type string `json:"Type"`
	// Kind takes REST2's "type" ("transaction"), which would otherwise
	// land in Type: encoding/json matches names regardless of case.
	Kind       string `json:"type"`
	Created    string `json:"Created"`
	Creator    ref    `json:"Creator"`
	Field      string `json:"Field"`
	OldValue   string `json:"OldValue"`
	NewValue   string `json:"NewValue"`
	ObjectId   flexID `json:"ObjectId"`
	ObjectType string `json:"ObjectType"`
}

const txnFields = "Type,Created,Creator,Field,OldValue,NewValue,ObjectId,ObjectType"

type page[T any] struct {
	Items    []T     `json:"items"`
	Page     flexInt `json:"page"`
	Pages    flexInt `json:"pages"`
	Total    flexInt `json:"total"`
	NextPage string  `json:"next_page"`
}

// flexInt is a count REST2 writes as 3, "3" or, for an empty result, 0.0.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" || s == "" {
		*f = 0
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("rt: a count RT wrote is not a number: %s", b)
	}
	*f = flexInt(v)
	return nil
}

// ticket is GET /ticket/N.
type ticket struct {
	ID          flexID `json:"id"`
	Subject     string `json:"Subject"`
	Status      string `json:"Status"`
	Queue       ref    `json:"Queue"`
	Owner       ref    `json:"Owner"`
	Requestor   []ref  `json:"Requestor"`
	Priority    string `json:"Priority"`
	Created     string `json:"Created"`
	LastUpdated string `json:"LastUpdated"`
}

// attachment is an item of /attachments with fields=attachmentFields.
type attachment struct {
	ID            flexID `json:"id"`
	TransactionId flexID `json:"TransactionId"`
	ContentType   string `json:"ContentType"`
	Content       string `json:"Content"`
}

const attachmentFields = "TransactionId,ContentType,Content"

// rtTime parses REST2's times ("2026-11-23T01:27:52Z").
func rtTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("rt: a time RT wrote is not RFC 3339: %q", s)
	}
	return t.UTC(), nil
}
