package githubfake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	docsREST        = "https://docs.github.com/rest"
	docsRateLimit   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
	docsSecondary   = docsRateLimit + "#about-secondary-rate-limits"
	secondaryText   = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE."
	enterprisePrefx = "/api/v3"
)

// reply is a response produced by a handler, finished by ServeHTTP.
type reply struct {
	status int
	header http.Header
	body   any // marshalled as JSON unless nil
}

func newReply(status int, body any) *reply {
	return &reply{status: status, header: http.Header{}, body: body}
}

func errorReply(status int, message, docs string) *reply {
	return newReply(status, map[string]any{
		"message": message, "documentation_url": docs, "status": strconv.Itoa(status),
	})
}

func notFound() *reply {
	return errorReply(http.StatusNotFound, "Not Found", docsREST)
}

// validationFailed is GitHub's 422 for an invalid field.
func validationFailed(resource, field, code string) *reply {
	return newReply(http.StatusUnprocessableEntity, map[string]any{
		"message":           "Validation Failed",
		"errors":            []any{map[string]any{"resource": resource, "field": field, "code": code}},
		"documentation_url": docsREST,
		"status":            "422",
	})
}

// call is the context of one authenticated API request.
type call struct {
	r     *http.Request
	body  []byte
	login string
	links links
	// base is the API base of this request, for Link headers.
	base string
	path string // without any /api/v3 prefix
}

// ServeHTTP answers one API request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	path := r.URL.Path
	prefix := ""
	if p, ok := strings.CutPrefix(path, enterprisePrefx); ok && strings.HasPrefix(p, "/") {
		path, prefix = p, enterprisePrefx
	}

	var chk any
	if s.valid != nil {
		vr := r.Clone(r.Context())
		vr.URL.Path = path
		vr.URL.RawPath = ""
		var err error
		chk, err = s.valid.Request(vr, body)
		if err != nil {
			s.recordInvalid(err)
		}
	}

	rep, drop, mutate := s.serve(r, body, path, prefix)

	var out []byte
	if rep.body != nil {
		b, err := json.Marshal(rep.body)
		if err != nil {
			panic(fmt.Sprintf("githubfake: marshal: %v", err))
		}
		out = b
		if mutate != nil {
			out = mutate(r, out)
		}
		rep.header.Set("Content-Type", "application/json; charset=utf-8")
	}
	if s.valid != nil && chk != nil {
		if err := s.valid.Response(chk, rep.status, rep.header, out); err != nil {
			s.recordInvalid(err)
		}
	}
	if drop {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler) // closes the connection without a reply
	}
	h := w.Header()
	for k, v := range rep.header {
		h[k] = v
	}
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	w.WriteHeader(rep.status)
	if rep.status != http.StatusNotModified {
		w.Write(out)
	}
}

// serve runs the request through failure injection, authentication, the
// rate limit and the handler. drop reports whether to hang up instead of
// answering; mutate is the test hook to apply to the body, if any.
func (s *Server) serve(r *http.Request, body []byte, path, prefix string) (rep *reply, drop bool, mutate func(*http.Request, []byte) []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	mutate = s.mutate
	s.requests++
	s.perPath[r.Method+" "+path]++
	for i, m := range s.drops {
		if m(r) {
			s.drops = append(s.drops[:i:i], s.drops[i+1:]...)
			drop = true
			break
		}
	}

	if sec := &s.secondary; sec.n > 0 {
		sec.n--
		rep := errorReply(sec.status, secondaryText, docsSecondary)
		secs := int(math.Ceil(sec.retryAfter.Seconds()))
		rep.header.Set("Retry-After", strconv.Itoa(secs))
		return rep, drop, mutate
	}

	tok, ok := s.tokens[credential(r)]
	if !ok {
		return errorReply(http.StatusUnauthorized, "Bad credentials", docsREST), drop, mutate
	}
	s.refillLocked(tok)
	user := s.userLocked(tok.login)
	if tok.remaining <= 0 && path != "/rate_limit" {
		rep := errorReply(http.StatusForbidden,
			fmt.Sprintf("API rate limit exceeded for user ID %d.", user.ID), docsRateLimit+"#about-the-primary-rate-limit")
		s.rateHeaders(rep.header, tok)
		return rep, drop, mutate
	}

	base := "http://" + r.Host
	if s.srv != nil {
		base = s.srv.URL
	}
	c := &call{
		r: r, body: body, login: tok.login, path: path,
		links: links{api: base + prefix, html: s.opts.HTMLBase},
		base:  base + prefix,
	}
	rep = s.route(c)

	if r.Method == http.MethodGet && rep.status == http.StatusOK {
		b, _ := json.Marshal(rep.body)
		sum := sha256.Sum256(b)
		etag := `"` + hex.EncodeToString(sum[:16]) + `"`
		rep.header.Set("ETag", etag)
		if etagMatch(r.Header.Get("If-None-Match"), etag) {
			// GitHub: a 304 does not count against the primary rate limit.
			rep = &reply{status: http.StatusNotModified, header: http.Header{"Etag": {etag}}}
			s.rateHeaders(rep.header, tok)
			return rep, drop, mutate
		}
	}
	if path != "/rate_limit" { // GitHub: checking the rate limit is free.
		tok.remaining--
	}
	s.rateHeaders(rep.header, tok)
	return rep, drop, mutate
}

// credential extracts the token of an "Authorization: Bearer T" or
// "Authorization: token T" header.
func credential(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "bearer", "token":
		return strings.TrimSpace(tok)
	}
	return ""
}

func (s *Server) rateHeaders(h http.Header, t *token) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(t.limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(t.remaining, 0)))
	h.Set("X-RateLimit-Used", strconv.Itoa(t.limit-max(t.remaining, 0)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(t.reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
}

// etagMatch reports whether an If-None-Match header names etag, comparing
// weakly as RFC 9110 requires for If-None-Match.
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// page is a parsed per_page/page pair.
type page struct{ perPage, page int }

func parsePage(c *call) (page, *reply) {
	q := c.r.URL.Query()
	p := page{perPage: 30, page: 1}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, validationFailed("Search", "per_page", "invalid")
		}
		p.perPage = min(max(n, 1), 100)
	}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, validationFailed("Search", "page", "invalid")
		}
		p.page = max(n, 1)
	}
	return p, nil
}

// paginate cuts items to the requested page and sets GitHub's Link header.
func paginate[T any](c *call, rep *reply, items []T, p page) []T {
	total := len(items)
	last := max((total+p.perPage-1)/p.perPage, 1)
	lo := min((p.page-1)*p.perPage, total)
	hi := min(lo+p.perPage, total)
	if total > p.perPage || p.page > 1 {
		link := func(n int, rel string) string {
			q := c.r.URL.Query()
			q.Set("page", strconv.Itoa(n))
			return fmt.Sprintf("<%s%s?%s>; rel=%q", c.base, c.path, q.Encode(), rel)
		}
		var parts []string
		if p.page > 1 {
			parts = append(parts, link(min(p.page-1, last), "prev"))
		}
		if p.page < last {
			parts = append(parts, link(p.page+1, "next"), link(last, "last"))
		}
		if p.page > 1 {
			parts = append(parts, link(1, "first"))
		}
		rep.header.Set("Link", strings.Join(parts, ", "))
	}
	return items[lo:hi]
}

// parseSince reads an ISO 8601 "since" parameter.
func parseSince(c *call) (time.Time, bool, *reply) {
	v := c.r.URL.Query().Get("since")
	if v == "" {
		return time.Time{}, false, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), true, nil
		}
	}
	return time.Time{}, false, validationFailed("Issue", "since", "invalid")
}
