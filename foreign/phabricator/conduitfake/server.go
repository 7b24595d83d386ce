package conduitfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// Clock supplies the current time; it is read with second resolution.
	// Nil means time.Now.
	Clock func() time.Time
}

// Server is an in-memory Conduit API server. It implements http.Handler and
// is safe for concurrent use. Create one with New.
type Server struct {
	clock func() time.Time

	mu         sync.Mutex
	users      []*User
	projects   []*Project
	repos      []*Repository
	revisions  []*Revision // index = id-1
	diffs      []*Diff     // index = id-1
	xacts      []*Transaction
	phidSeq    int
	xactSeq    int
	commentSeq int
	base       string // base URL of the request being handled, for URIs

	lag                time.Duration
	failN              int
	failCode, failInfo string
	disabled           map[string]bool
	total              int
	perMethod          map[string]int

	ts *httptest.Server
}

// New returns an empty server.
func New(opts Options) *Server {
	c := opts.Clock
	if c == nil {
		c = time.Now
	}
	return &Server{clock: c, disabled: map[string]bool{}, perMethod: map[string]int{}}
}

// Start serves s on a local httptest server and returns its base URL
// (without the trailing "/api/"). Call Close when done.
func (s *Server) Start() string {
	s.ts = httptest.NewServer(s)
	return s.ts.URL
}

// Close stops the server started by Start.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// conduitError is a Conduit-level failure (error_code/error_info).
type conduitError struct{ code, info string }

func (e *conduitError) Error() string { return e.code + ": " + e.info }

func coreErr(format string, args ...any) error {
	return &conduitError{"ERR-CONDUIT-CORE", fmt.Sprintf(format, args...)}
}

type handlerFunc func(s *Server, viewer *User, p params) (any, error)

var methods = map[string]handlerFunc{
	"conduit.ping":                 (*Server).ping,
	"user.whoami":                  (*Server).whoami,
	"user.search":                  (*Server).userSearch,
	"project.search":               (*Server).projectSearch,
	"diffusion.repository.search":  (*Server).repositorySearch,
	"differential.revision.search": (*Server).revisionSearch,
	"differential.diff.search":     (*Server).diffSearch,
	"differential.createrawdiff":   (*Server).createRawDiff,
	"differential.getrawdiff":      (*Server).getRawDiff,
	"differential.revision.edit":   (*Server).revisionEdit,
	"transaction.search":           (*Server).transactionSearch,
}

// ServeHTTP answers POST /api/METHOD. Every answer carries a Date header
// read from Options.Clock, so clients can learn the server's wall clock.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.clock().UTC().Format(http.TimeFormat))
	method, ok := strings.CutPrefix(r.URL.Path, "/api/")
	if !ok || method == "" {
		http.NotFound(w, r)
		return
	}
	result, err := s.call(method, r)
	resp := struct {
		Result    any     `json:"result"`
		ErrorCode *string `json:"error_code"`
		ErrorInfo *string `json:"error_info"`
	}{Result: result}
	if err != nil {
		ce, ok := err.(*conduitError)
		if !ok {
			ce = &conduitError{"ERR-CONDUIT-CORE", err.Error()}
		}
		resp.Result = nil
		resp.ErrorCode, resp.ErrorInfo = &ce.code, &ce.info
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(resp); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) call(method string, r *http.Request) (any, error) {
	if err := r.ParseForm(); err != nil {
		return nil, coreErr("bad request: %v", err)
	}
	p, token, err := requestParams(r)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.total++
	s.perMethod[method]++
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	s.base = scheme + "://" + r.Host
	if s.failN > 0 {
		s.failN--
		return nil, &conduitError{s.failCode, s.failInfo}
	}
	h, ok := methods[method]
	if !ok || s.disabled[method] {
		return nil, &conduitError{"ERR-CONDUIT-CALL", fmt.Sprintf("Conduit method %q does not exist.", method)}
	}
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, &conduitError{"ERR-INVALID-AUTH", "Authentication is required to call this method."}
	}
	viewer := s.userByToken(token)
	if viewer == nil {
		return nil, &conduitError{"ERR-INVALID-AUTH", "API token \"" + token + "\" is not valid."}
	}
	return h(s, viewer, p)
}

// requestParams extracts the parameters and API token. The preferred form is
// a "params" field holding a JSON object (token in __conduit__.token);
// otherwise every other form field is taken as a top-level string parameter.
func requestParams(r *http.Request) (params, string, error) {
	token := r.Form.Get("api.token")
	p := params{}
	if raw := r.Form.Get("params"); raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			return nil, token, coreErr("Invalid JSON in params: %v", err)
		}
		if c, ok := p["__conduit__"].(map[string]any); ok {
			if t, ok := c["token"].(string); ok && t != "" {
				token = t
			}
		}
		delete(p, "__conduit__")
		return p, token, nil
	}
	for k, v := range r.Form {
		switch k {
		case "api.token", "output", "__conduit__":
		default:
			p[k] = v[0]
		}
	}
	return p, token, nil
}
