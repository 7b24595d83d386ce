package foreign

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// script answers each request with the next of its answers; hits counts
// them, bodies records what came.
type script struct {
	mu      sync.Mutex
	answers []func(w http.ResponseWriter)
	hits    int
	bodies  []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	i := s.hits
	s.hits++
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	if i < len(s.answers) {
		s.answers[i](w)
		return
	}
	w.Write([]byte("ok"))
}

func (s *script) n() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

func status(code int, retryAfter string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		c.Close()
	}
}

func client(waits *[]time.Duration) *http.Client {
	return &http.Client{Transport: &Retry{Sleep: func(ctx context.Context, d time.Duration) error {
		*waits = append(*waits, d)
		return nil
	}}}
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter){status(429, "7"), status(503, "")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var waits []time.Duration
	req, _ := http.NewRequest("PUT", srv.URL, strings.NewReader("the body"))
	resp, err := client(&waits).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || s.n() != 3 {
		t.Fatalf("status %d after %d requests, want 200 after 3", resp.StatusCode, s.n())
	}
	if len(waits) != 2 || waits[0] != 7*time.Second || waits[1] <= 0 || waits[1] > time.Second {
		t.Fatalf("waits %v, want [7s, a backoff of at most 1s]", waits)
	}
	for i, b := range s.bodies {
		if b != "the body" {
			t.Fatalf("try %d sent body %q", i+1, b)
		}
	}
}

func TestRetryGivesUpWithReset(t *testing.T) {
	// A wait longer than MaxWait: no waiting at all, a clear error.
	s := &script{answers: []func(http.ResponseWriter){status(429, "3600")}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var waits []time.Duration
	_, err := client(&waits).Get(srv.URL)
	var rl *RateLimitError
	if !errors.As(err, &rl) || rl.Status != 429 || time.Until(rl.Reset) < 59*time.Minute {
		t.Fatalf("error %v, want a rate limit error resetting in an hour", err)
	}
	if len(waits) != 0 || s.n() != 1 {
		t.Fatalf("waited %v over %d requests", waits, s.n())
	}
	if !Transient(err) || !strings.Contains(err.Error(), "takes requests again at") {
		t.Fatalf("error %q: want a transient error that says when", err)
	}
	// Always 503: gives up after Attempts.
	s2 := &script{answers: []func(http.ResponseWriter){status(503, ""), status(503, ""), status(503, "")}}
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	c := &http.Client{Transport: &Retry{Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }}}
	if _, err := c.Get(srv2.URL); !errors.As(err, &rl) || s2.n() != 3 {
		t.Fatalf("error %v after %d requests, want a rate limit error after 3", err, s2.n())
	}
}

func TestRetryBrokenConnections(t *testing.T) {
	// A GET is tried again after a broken connection.
	s := &script{answers: []func(http.ResponseWriter){hangUp}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var waits []time.Duration
	resp, err := client(&waits).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s.n() != 2 {
		t.Fatalf("%d requests, want 2", s.n())
	}
	// A POST is not: the server may have applied it.
	s2 := &script{answers: []func(http.ResponseWriter){hangUp}}
	srv2 := httptest.NewServer(s2)
	defer srv2.Close()
	_, err = client(&waits).Post(srv2.URL, "text/plain", strings.NewReader("x"))
	if err == nil || s2.n() != 1 {
		t.Fatalf("POST over a broken connection: %v after %d requests, want an error after 1", err, s2.n())
	}
	if !Transient(err) {
		t.Fatalf("%v is not transient", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"0": 0, "120": 2 * time.Minute, now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat): 0,
	} {
		if got, ok := RetryAfter(h, now); !ok || got != want {
			t.Errorf("RetryAfter(%q) = %v %v, want %v", h, got, ok, want)
		}
	}
	for _, h := range []string{"", "soon", "-5"} {
		if _, ok := RetryAfter(h, now); ok {
			t.Errorf("RetryAfter(%q) parsed", h)
		}
	}
}

// PerTry bounds each try, not the waits between them: a slow first answer
// is tried again, and the body of the answer that came is readable.
func TestRetryPerTry(t *testing.T) {
	slow := func(w http.ResponseWriter) { time.Sleep(300 * time.Millisecond); w.Write([]byte("late")) }
	s := &script{answers: []func(http.ResponseWriter){slow}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	var waits []time.Duration
	c := &http.Client{Transport: &Retry{PerTry: 100 * time.Millisecond, Sleep: func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return nil
	}}}
	resp, err := c.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(b) != "ok" || s.n() != 2 || len(waits) != 1 {
		t.Fatalf("body %q (%v) after %d requests and waits %v", b, err, s.n(), waits)
	}
}
