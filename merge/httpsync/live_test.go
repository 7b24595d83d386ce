package httpsync_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/replica"
)

// serveLive serves l and ends its live subscriptions before the replica
// closes.
func serveLive(t *testing.T, l *merge.Local, opts *httpsync.HandlerOptions) *httptest.Server {
	t.Helper()
	h := httpsync.NewHandler(l, opts)
	s := httptest.NewServer(h)
	t.Cleanup(func() { h.Close(); s.Close() })
	return s
}

// watcher runs Watch in the background and hands over what it receives.
type watcher struct {
	got    chan *changeset.Changeset
	synced chan struct{}
	done   chan error
	cancel context.CancelFunc
}

func watch(t *testing.T, r *httpsync.Remote, opts httpsync.WatchOptions) *watcher {
	t.Helper()
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{got: make(chan *changeset.Changeset, 1000), synced: make(chan struct{}, 100), done: make(chan error, 1), cancel: cancel}
	opts.OnSync = func() { w.synced <- struct{}{} }
	go func() {
		w.done <- r.Watch(wctx, &opts, func(cs *changeset.Changeset) error {
			w.got <- cs
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-w.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch ended with %v", err)
		}
	})
	return w
}

// next waits for the next changeset; the timeout only keeps a broken test
// from hanging.
func (w *watcher) next(t *testing.T) *changeset.Changeset {
	t.Helper()
	select {
	case cs := <-w.got:
		return cs
	case err := <-w.done:
		t.Fatalf("Watch ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no changeset came")
	}
	return nil
}

func (w *watcher) sync(t *testing.T) {
	t.Helper()
	select {
	case <-w.synced:
	case err := <-w.done:
		t.Fatalf("Watch ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no sync came")
	}
}

// A subscriber gets the history it lacks, then sync, then each new
// changeset, whole (same content hash) and in log order; a version vector
// leaves out what it covers.
func TestLiveHistoryThenNew(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	commit(t, a, 5)
	srv := serveLive(t, a, nil)
	rem := dial(t, srv.URL)

	w := watch(t, rem, httpsync.WatchOptions{})
	for seq := uint64(1); seq <= 5; seq++ {
		cs := w.next(t)
		if cs.Seq != seq || cs.Origin != a.R.UUID() {
			t.Fatalf("got %d from %s, want %d", cs.Seq, cs.Origin, seq)
		}
		want, err := a.R.ReadChangeset(seq)
		if err != nil {
			t.Fatal(err)
		}
		h1, _ := want.Hash()
		h2, _ := cs.Hash()
		if h1 != h2 {
			t.Fatalf("changeset %d arrived changed", seq)
		}
	}
	w.sync(t)
	commit(t, a, 3)
	for seq := uint64(6); seq <= 8; seq++ {
		if cs := w.next(t); cs.Seq != seq {
			t.Fatalf("got %d, want %d", cs.Seq, seq)
		}
	}

	// Since covers 1..6 of a's own changesets.
	w2 := watch(t, rem, httpsync.WatchOptions{Since: map[uuid.UUID]uint64{a.R.UUID(): 6}})
	for seq := uint64(7); seq <= 8; seq++ {
		if cs := w2.next(t); cs.Seq != seq {
			t.Fatalf("with since 6: got %d, want %d", cs.Seq, seq)
		}
	}
	w2.sync(t)
}

// Several streams share one connection; each has its type filter; close
// ends one stream; a second subscribe on a live mux_id is an error.
func TestLiveMultiplexedStreams(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	srv := serveLive(t, a, nil)
	c, _, err := websocket.Dial(ctx, srv.URL+"/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	send := func(m string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	type msg struct {
		Type      string          `json:"type"`
		MuxID     int64           `json:"mux_id"`
		Changeset *changeset.JSON `json:"changeset"`
		Error     string          `json:"error"`
	}
	recv := func() msg {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, b, err := c.Read(rctx)
		if err != nil {
			t.Fatal(err)
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	send(`{"type":"subscribe","mux_id":1,"types":["bug"]}`)
	send(`{"type":"subscribe","mux_id":2,"types":["note"]}`)
	for range 2 {
		if m := recv(); m.Type != "sync" {
			t.Fatalf("want two syncs first, got %+v", m)
		}
	}
	if _, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"a": "1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.R.Commit(ctx, replica.Edit{Type: "note", Op: replica.Create, Set: map[string]string{"a": "2"}}); err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for range 2 {
		m := recv()
		if m.Type != "changeset" {
			t.Fatalf("want changesets, got %+v", m)
		}
		got[m.MuxID] = m.Changeset.Changes[0].Type
	}
	if got[1] != "bug" || got[2] != "note" {
		t.Fatalf("streams got %v, want 1: bug, 2: note", got)
	}
	send(`{"type":"subscribe","mux_id":2}`)
	if m := recv(); m.Type != "error" || m.MuxID != 2 || !strings.Contains(m.Error, "already subscribed") {
		t.Fatalf("a second subscribe on mux 2: %+v", m)
	}
	send(`{"type":"close","mux_id":1}`)
	send(`{"type":"bogus","mux_id":3}`)
	if m := recv(); m.Type != "error" || !strings.Contains(m.Error, "unknown message type") {
		t.Fatalf("an unknown message: %+v", m)
	}
	// Mux 1 is closed: after a bug and a note, only mux 2's note comes.
	for _, typ := range []string{"bug", "note"} {
		if _, err := a.R.Commit(ctx, replica.Edit{Type: typ, Op: replica.Create, Set: map[string]string{"a": "3"}}); err != nil {
			t.Fatal(err)
		}
	}
	if m := recv(); m.Type != "changeset" || m.MuxID != 2 || m.Changeset.Changes[0].Type != "note" {
		t.Fatalf("after close of mux 1: %+v", m)
	}
}

// cutProxy forwards TCP to a server and can cut every connection.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() { io.Copy(c, s); c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// A cut connection is dialled again, and the stream goes on where it
// stopped: nothing lost, nothing twice.
func TestLiveResumesAfterCut(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	srv := serveLive(t, a, nil)
	p := newCutProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	rem := dial(t, "http://"+p.ln.Addr().String())
	w := watch(t, rem, httpsync.WatchOptions{})
	w.sync(t)
	want := uint64(1)
	for round := range 5 {
		commit(t, a, 3)
		for range 3 {
			if cs := w.next(t); cs.Seq != want {
				t.Fatalf("round %d: got %d, want %d", round, cs.Seq, want)
			}
			want++
		}
		p.cut()
	}
	commit(t, a, 2)
	for range 2 {
		if cs := w.next(t); cs.Seq != want {
			t.Fatalf("after the cuts: got %d, want %d", cs.Seq, want)
		}
		want++
	}
	select {
	case cs := <-w.got:
		t.Fatalf("changeset %d came twice", cs.Seq)
	default:
	}
}

// A subscriber without a token is refused at once, with the server's
// answer; WatchLatest reports the latest sequence number as it grows.
func TestLiveAuthAndLatest(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	tok, err := httpsync.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	set := httpsync.NewTokenSet([]httpsync.TokenHash{{Hash: httpsync.HashToken(tok), Scope: httpsync.ScopeRead}})
	var revoked atomic.Bool
	srv := serveLive(t, a, &httpsync.HandlerOptions{Auth: func(token string) (httpsync.Scope, bool) {
		if revoked.Load() {
			return 0, false
		}
		return set.Check(token)
	}})
	rem, err := httpsync.Dial(ctx, srv.URL, &httpsync.ClientOptions{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	// Refused: Watch returns the answer at once, without dialling again.
	revoked.Store(true)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = rem.Watch(wctx, nil, func(*changeset.Changeset) error { return nil })
	var he *httpsync.Error
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized {
		t.Fatalf("Watch with a revoked token: %v", err)
	}
	revoked.Store(false)

	commit(t, a, 2)
	seen := make(chan uint64, 100)
	lctx, lcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- rem.WatchLatest(lctx, func(latest uint64) error {
			seen <- latest
			return nil
		})
	}()
	waitFor := func(want uint64) {
		t.Helper()
		for {
			select {
			case got := <-seen:
				if got == want {
					return
				}
				if got > want {
					t.Fatalf("latest %d, past %d", got, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("latest never reached %d", want)
			}
		}
	}
	waitFor(2)
	commit(t, a, 1)
	waitFor(3)
	lcancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("WatchLatest: %v", err)
	}
}

// GET /metrics counts what the server did: changesets served by stream,
// integrated from pushes, sync durations by op, live subscribers, errors;
// with tokens it needs one, as /v1 does.
func TestMetrics(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	commit(t, a, 4)
	tok, err := httpsync.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	set := httpsync.NewTokenSet([]httpsync.TokenHash{{Hash: httpsync.HashToken(tok), Scope: httpsync.ScopeWrite}})
	srv := serveLive(t, a, &httpsync.HandlerOptions{Auth: set.Check})
	opts := &httpsync.ClientOptions{Token: tok, Backoff: time.Millisecond}
	rem, err := httpsync.Dial(ctx, srv.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	b := newLocal(t, a.R.DatabaseUUID())
	if _, err := merge.Pull(ctx, rem, b, nil); err != nil {
		t.Fatal(err)
	}
	commit(t, b, 2)
	if _, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: opts}); err != nil {
		t.Fatal(err)
	}
	w := watch(t, rem, httpsync.WatchOptions{})
	for range 6 {
		w.next(t)
	}
	// An error answer: a bad push.
	req, _ := http.NewRequest("POST", srv.URL+"/v1/push", strings.NewReader("garbage"))
	req.Header.Set("Authorization", "Bearer "+tok)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}

	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Fatalf("GET /metrics without a token: %d", code)
	}
	code, body := get(tok)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	for _, want := range []string{
		`prophet_changesets_served_total{stream="pull"} 4`,
		`prophet_changesets_served_total{stream="live"} 6`,
		`prophet_changesets_integrated_total 2`,
		`prophet_sync_duration_seconds_count{op="pull",result="ok"} `,
		`prophet_sync_duration_seconds_count{op="push",result="ok"} 1`,
		`prophet_live_subscribers 1`,
		`prophet_live_streams 1`,
		`prophet_errors_total{code="malformed"} 1`,
		`prophet_replica_latest_seq 6`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in the metrics:\n%s", want, body)
		}
	}
}
