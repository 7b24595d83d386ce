package httpsync_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/replica"
)

var ctx = context.Background()

func newLocal(t *testing.T, db uuid.UUID) *merge.Local {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "r")
	r, err := replica.Init(dir, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	l, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve serves l on a test server, through wrap if not nil.
func serve(t *testing.T, l *merge.Local, opts *httpsync.HandlerOptions, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	var h http.Handler = httpsync.NewHandler(l, opts)
	if wrap != nil {
		h = wrap(h)
	}
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

var fast = &httpsync.ClientOptions{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

func dial(t *testing.T, url string) *httpsync.Remote {
	t.Helper()
	r, err := httpsync.Dial(ctx, url, fast)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func commit(t *testing.T, l *merge.Local, n int) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	for i := range n {
		cs, err := l.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": fmt.Sprint(i), "pad": strings.Repeat("x", 200)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cs.Changes[0].Record)
	}
	return ids
}

// ids lists the changeset IDs in l's log and fails on a duplicate.
func ids(t *testing.T, l *merge.Local) map[changeset.ID]bool {
	t.Helper()
	seen := map[changeset.ID]bool{}
	err := l.Changesets(ctx, 0, func(seq uint64, raw []byte) error {
		id, err := changeset.PeekID(raw)
		if err != nil {
			return err
		}
		if id.Origin == l.R.UUID() {
			id.Seq = seq
		}
		if seen[id] {
			return fmt.Errorf("changeset %s twice in %s", id, l.R.Dir())
		}
		seen[id] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return seen
}

func verify(t *testing.T, ls ...*merge.Local) {
	t.Helper()
	for _, l := range ls {
		v, err := l.R.Verify(ctx)
		if err != nil || !v.OK() {
			t.Fatalf("verify %s: %v %v", l.R.Dir(), v.Problems, err)
		}
	}
}

func TestPullCloneOverHTTP(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 30)
	srv := serve(t, a, nil, nil)

	// Clone: an init with the database UUID plus a pull.
	c, rep, err := merge.Clone(ctx, dial(t, srv.URL), filepath.Join(t.TempDir(), "c"), nil, nil)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	defer c.Close()
	if c.R.DatabaseUUID() != db || c.R.UUID() == a.R.UUID() || c.R.Digest() != a.R.Digest() || rep.Integrated != 30 || rep.Position != 30 {
		t.Fatalf("clone: %+v", rep)
	}
	// New changesets on a: a pull brings exactly them.
	commit(t, a, 5)
	rep, err = merge.Pull(ctx, dial(t, srv.URL), c, nil)
	if err != nil || rep.Integrated != 5 || rep.Read != 5 || rep.Position != 35 || c.R.Digest() != a.R.Digest() {
		t.Fatalf("pull: %+v %v", rep, err)
	}
	// Up to date: nothing read.
	rep, err = merge.Pull(ctx, dial(t, srv.URL), c, nil)
	if err != nil || rep.Integrated != 0 || rep.Read != 0 {
		t.Fatalf("no-op pull: %+v %v", rep, err)
	}
	verify(t, a, c)
}

// countingHandler counts the bytes and item frames of /v1/changesets
// answers (an item frame starts with kind 1; the test only counts answers
// that it knows hold none).
func counting(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/changesets" {
				w = &countWriter{ResponseWriter: w, n: n}
			}
			h.ServeHTTP(w, r)
		})
	}
}

type countWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	c.n.Add(int64(len(b)))
	return c.ResponseWriter.Write(b)
}

func (c *countWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

// The server sends a puller only what it lacks: a pull that has everything
// already (its own changesets, pushed there) gets only the end frame.
func TestServerFiltersByTickets(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	commit(t, b, 40)
	var n atomic.Int64
	srv := serve(t, a, nil, counting(&n))
	rep, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast})
	if err != nil || rep.Integrated != 40 {
		t.Fatalf("push: %+v %v", rep, err)
	}
	// b pulls a: a's log holds only b's own 40 changesets.
	r := dial(t, srv.URL)
	sent := 0
	last, err := r.ChangesetsFor(ctx, 0, b.R.Tickets(), b.R.UUID(), b.R.LatestSeq(), func(uint64, []byte) error { sent++; return nil })
	if err != nil || sent != 0 || last != 40 {
		t.Fatalf("filtered: sent %d, last %d, %v", sent, last, err)
	}
	if got := n.Load(); got == 0 || got > 8 {
		t.Fatalf("a no-op stream took %d bytes: more than an end frame", got)
	}
	// The same through merge.Pull: everything read and skipped, nothing
	// integrated, the position at the end.
	rep, err = merge.Pull(ctx, r, b, nil)
	if err != nil || rep.Read != 40 || rep.Skipped != 40 || rep.Integrated != 0 || rep.Position != 40 {
		t.Fatalf("pull: %+v %v", rep, err)
	}
	// Unfiltered, everything comes.
	sent = 0
	if err := r.Changesets(ctx, 0, func(uint64, []byte) error { sent++; return nil }); err != nil || sent != 40 {
		t.Fatalf("unfiltered: %d %v", sent, err)
	}
}

// cutOnce kills the first /v1/changesets answer after limit bytes.
func cutOnce(limit int64, cuts *atomic.Int32) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/changesets" && cuts.Add(1) == 1 {
				w = &cutWriter{ResponseWriter: w, left: limit}
			}
			h.ServeHTTP(w, r)
		})
	}
}

type cutWriter struct {
	http.ResponseWriter
	left int64
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		c.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is closed mid-stream
	}
	c.left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}

func (c *cutWriter) Flush() { c.ResponseWriter.(http.Flusher).Flush() }

func TestResumeAfterCut(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 3000) // ~700 KB of log: several flushes
	var cuts atomic.Int32
	srv := serve(t, a, &httpsync.HandlerOptions{FlushEvery: 32 << 10}, cutOnce(300<<10, &cuts))
	clean := newLocal(t, db)
	cleanSrv := serve(t, a, nil, nil)
	if _, err := merge.Pull(ctx, dial(t, cleanSrv.URL), clean, nil); err != nil {
		t.Fatal(err)
	}

	b := newLocal(t, db)
	rep, err := merge.Pull(ctx, dial(t, srv.URL), b, nil)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if cuts.Load() < 2 {
		t.Fatalf("the stream was not cut and resumed (%d requests)", cuts.Load())
	}
	if rep.Integrated != 3000 || rep.Position != 3000 || b.R.Digest() != clean.R.Digest() || b.R.LatestSeq() != 3000 {
		t.Fatalf("after a resumed pull: %+v, latest %d", rep, b.R.LatestSeq())
	}
	if got := len(ids(t, b)); got != 3000 {
		t.Fatalf("%d distinct changesets", got)
	}
	verify(t, b)
}

// A cut that never heals: the pull fails after its attempts, keeps what it
// integrated, and the next pull finishes with no duplicate.
func TestCutEveryTime(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 2000)
	broken := true
	srv := serve(t, a, &httpsync.HandlerOptions{FlushEvery: 16 << 10}, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if broken && r.URL.Path == "/v1/changesets" {
				w = &cutWriter{ResponseWriter: w, left: 10}
			}
			h.ServeHTTP(w, r)
		})
	})
	b := newLocal(t, db)
	_, err := merge.Pull(ctx, dial(t, srv.URL), b, nil)
	if err == nil || !strings.Contains(err.Error(), "gave up after 5 attempts") {
		t.Fatalf("pull over a broken connection: %v", err)
	}
	broken = false
	rep, err := merge.Pull(ctx, dial(t, srv.URL), b, nil)
	if err != nil || b.R.Digest() != a.R.Digest() || len(ids(t, b)) != 2000 {
		t.Fatalf("second pull: %+v %v", rep, err)
	}
}

// A → B → C: three servers, each pulling from the previous over HTTP.
func TestRelay(t *testing.T) {
	db := uuid.New()
	a, b, c := newLocal(t, db), newLocal(t, db), newLocal(t, db)
	sa, sb, sc := serve(t, a, nil, nil), serve(t, b, nil, nil), serve(t, c, nil, nil)
	commit(t, a, 20)
	if _, err := merge.Pull(ctx, dial(t, sa.URL), b, nil); err != nil {
		t.Fatal(err)
	}
	commit(t, b, 5)
	if _, err := merge.Pull(ctx, dial(t, sb.URL), c, nil); err != nil {
		t.Fatal(err)
	}
	commit(t, c, 3)
	// Back round: a pulls c, and gets b's and c's without its own.
	rep, err := merge.Pull(ctx, dial(t, sc.URL), a, nil)
	if err != nil || rep.Integrated != 8 {
		t.Fatalf("a pulls c: %+v %v", rep, err)
	}
	if _, err := merge.Pull(ctx, dial(t, sa.URL), b, nil); err != nil {
		t.Fatal(err)
	}
	if a.R.Digest() != c.R.Digest() || b.R.Digest() != a.R.Digest() {
		t.Fatal("digests differ after the relay")
	}
	for _, l := range []*merge.Local{a, b, c} {
		if len(ids(t, l)) != 28 {
			t.Fatalf("%s holds %d changesets", l.R.Dir(), len(ids(t, l)))
		}
	}
	verify(t, a, b, c)
}

func TestPush(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	srv := serve(t, a, nil, nil)
	commit(t, a, 3)
	if _, err := merge.Pull(ctx, dial(t, srv.URL), b, nil); err != nil {
		t.Fatal(err)
	}
	commit(t, b, 7)
	rep, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast})
	if err != nil || rep.Integrated != 7 || rep.Read != 10 || rep.Skipped != 3 || a.R.Digest() != b.R.Digest() {
		t.Fatalf("push: %+v %v", rep, err)
	}
	// Again: nothing to send.
	rep, err = httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast})
	if err != nil || rep.Integrated != 0 || rep.Read != 0 {
		t.Fatalf("second push: %+v %v", rep, err)
	}
	// Other database: refused, as a local push is.
	o := newLocal(t, uuid.New())
	commit(t, o, 1)
	if _, err := httpsync.Push(ctx, o, srv.URL, &httpsync.PushOptions{Client: fast}); !errors.Is(err, merge.ErrOtherDatabase) {
		t.Fatalf("push from another database: %v", err)
	}
	verify(t, a)
}

func TestPushConflict(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	srv := serve(t, a, nil, nil)
	id := commit(t, a, 1)[0]
	if _, err := merge.Pull(ctx, dial(t, srv.URL), b, nil); err != nil {
		t.Fatal(err)
	}
	a.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"n": "server"}})
	b.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"n": "pusher"}})
	before := a.R.LatestSeq()
	_, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast})
	var ue *merge.UnresolvedError
	var he *httpsync.Error
	if !errors.As(err, &ue) || !errors.As(err, &he) || he.Status != http.StatusConflict ||
		!strings.Contains(ue.Conflict.Describe(), `n: was "0", there "pusher", here "server"`) {
		t.Fatalf("conflicting push: %v", err)
	}
	if a.R.LatestSeq() != before {
		t.Fatal("a conflicting push integrated something")
	}
	// The pusher's "theirs" is the server's value.
	rep, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast, Prefer: "theirs"})
	if err != nil || rep.Conflicts != 1 || rep.Integrated != 3 {
		t.Fatalf("push --prefer theirs: %+v %v", rep, err)
	}
	rec, _ := a.R.Get("bug", id)
	if rec.Get("n") != "server" {
		t.Fatalf("n = %q", rec.Get("n"))
	}
	if _, err := merge.Pull(ctx, dial(t, srv.URL), b, nil); err != nil || a.R.Digest() != b.R.Digest() {
		t.Fatalf("b pulls the settlement: %v", err)
	}
	verify(t, a, b)
}

// post sends body to /v1/push and returns the status and answer.
func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url+"/v1/push", "application/x-prophet-frames", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func frame(kind byte, parts ...[]byte) []byte {
	b := []byte{kind}
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func uv(v uint64) []byte { return binary.AppendUvarint(nil, v) }

func lp(b []byte) []byte { return append(uv(uint64(len(b))), b...) }

func header(l *merge.Local) []byte {
	return frame(4, lp(fmt.Appendf(nil, `{"replica":%q,"database":%q,"latest":%d}`, l.R.UUID(), l.R.DatabaseUUID(), l.R.LatestSeq())))
}

func rawAt(t *testing.T, l *merge.Local, seq uint64) []byte {
	t.Helper()
	var out []byte
	l.Changesets(ctx, seq-1, func(s uint64, raw []byte) error {
		out = append([]byte(nil), raw...)
		return errors.New("stop")
	})
	return out
}

func TestMalformedPush(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	srv := serve(t, a, &httpsync.HandlerOptions{MaxPushBytes: 64 << 10}, nil)
	commit(t, b, 3)
	good1, good2 := rawAt(t, b, 1), rawAt(t, b, 2)
	noRes := frame(0, uv(0))
	garbage := []byte{0x97, 0x01, 0xc4, 0x10, 1, 2, 3}
	for _, c := range []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"no header", noRes, 400, "header"},
		{"garbage changeset", concat(header(b), noRes, frame(1, uv(1), lp(garbage)), frame(0, uv(1))), 400, "malformed changeset"},
		{"unknown frame kind", concat(header(b), noRes, frame(9)), 400, "frame kind"},
		{"torn frame", concat(header(b), noRes, frame(1, uv(1), uv(uint64(len(good1))), good1[:5])), 400, "truncated"},
		{"no end frame", concat(header(b), noRes), 400, "truncated"},
		{"bytes after the end", concat(header(b), noRes, frame(0, uv(0)), []byte{0}), 400, "after the end"},
		{"out of order", concat(header(b), noRes, frame(1, uv(2), lp(good2)), frame(1, uv(1), lp(good1)), frame(0, uv(2))), 400, "log order"},
		{"good then garbage", concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(1, uv(2), lp(garbage)), frame(0, uv(2))), 400, "malformed changeset"},
		{"good then trailing bytes", concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(0, uv(1)), []byte{0}), 400, "after the end"},
		{"oversized", concat(header(b), noRes, frame(1, uv(1), lp(bytes.Repeat([]byte{1}, 100<<10))), frame(0, uv(1))), 413, "over 65536 bytes"},
	} {
		status, answer := post(t, srv.URL, c.body)
		if status != c.status || !strings.Contains(answer, c.want) || !strings.HasPrefix(answer, `{"error":`) {
			t.Errorf("%s: %d %s", c.name, status, answer)
		}
		if a.R.LatestSeq() != 0 {
			t.Fatalf("%s: %d changesets integrated", c.name, a.R.LatestSeq())
		}
	}
	// Two good entries then a torn third: nothing of it either.
	good3 := rawAt(t, b, 3)
	status, answer := post(t, srv.URL, concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(1, uv(2), lp(good2)), frame(1, uv(3), uv(uint64(len(good3))), good3[:3])))
	if status != 400 || a.R.LatestSeq() != 0 {
		t.Fatalf("torn after two: %d %s, %d integrated", status, answer, a.R.LatestSeq())
	}
	// The same complete: all three.
	status, answer = post(t, srv.URL, concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(1, uv(2), lp(good2)), frame(1, uv(3), lp(good3)), frame(0, uv(3))))
	if status != 200 || a.R.LatestSeq() != 3 || a.R.Digest() != b.R.Digest() {
		t.Fatalf("good push: %d %s, %d integrated", status, answer, a.R.LatestSeq())
	}
	verify(t, a)
}

// A pushed changeset that claims the server's own UUID, which the server
// does not hold, is refused, and the pusher is told why.
func TestPushForgedOwnChangeset(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	srv := serve(t, a, nil, nil)
	commit(t, b, 1)
	forged := &changeset.Changeset{Origin: a.R.UUID(), OriginSeq: 5, Creator: "mallory", Created: time.Unix(1, 0).UTC(),
		Changes: []changeset.Change{{RecordType: "bug", Record: uuid.New(), Op: changeset.Add, Props: []changeset.PropChange{{Name: "n", New: "x"}}}}}
	raw, err := changeset.Encode(nil, forged)
	if err != nil {
		t.Fatal(err)
	}
	status, answer := post(t, srv.URL, concat(header(b), frame(0, uv(0)), frame(1, uv(1), lp(raw)), frame(0, uv(1))))
	if status != http.StatusUnprocessableEntity || !strings.Contains(answer, "restored from an older copy") || a.R.LatestSeq() != 0 {
		t.Fatalf("forged: %d %s", status, answer)
	}
}

func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

func TestEndpoints(t *testing.T) {
	a := newLocal(t, uuid.New())
	srv := serve(t, a, nil, nil)
	for path, want := range map[string]string{
		"/healthz": "ok\n",
		"/v1/info": fmt.Sprintf(`{"replica":%q,"database":%q,"latest":0}`+"\n", a.R.UUID(), a.R.DatabaseUUID()),
		"/v1/nope": `{"error":"no endpoint GET /v1/nope","code":"not_found"}` + "\n",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("%s: %s, want %s", path, b, want)
		}
	}
}

// While the server skips what the puller has, it sends progress frames; a
// stream cut after some resumes from the last one, not from the start.
func TestProgressFrames(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	commit(t, b, 2000)
	if _, err := httpsync.Push(ctx, b, serve(t, a, nil, nil).URL, &httpsync.PushOptions{Client: fast}); err != nil {
		t.Fatal(err)
	}
	var afters []uint64
	var cuts atomic.Int32
	srv := serve(t, a, &httpsync.HandlerOptions{ProgressEvery: time.Nanosecond}, func(h http.Handler) http.Handler {
		h = cutOnce(20, &cuts)(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/changesets" {
				body, _ := io.ReadAll(r.Body)
				var req struct {
					After uint64 `json:"after"`
				}
				json.Unmarshal(body, &req)
				afters = append(afters, req.After)
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			h.ServeHTTP(w, r)
		})
	})
	sent := 0
	last, err := dial(t, srv.URL).ChangesetsFor(ctx, 0, b.R.Tickets(), b.R.UUID(), b.R.LatestSeq(), func(uint64, []byte) error { sent++; return nil })
	if err != nil || sent != 0 || last != 2000 {
		t.Fatalf("sent %d, last %d, %v", sent, last, err)
	}
	if len(afters) != 2 || afters[0] != 0 || afters[1] == 0 || afters[1]%256 != 0 {
		t.Fatalf("requests after %v: want a resumed one after a progress frame", afters)
	}
}

// A pushed changeset under an identity the server holds, whose content is
// not the one it holds (its content hash differs), is refused with 422,
// and nothing of the push is applied.
func TestPushForgedContent(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	srv := serve(t, a, nil, nil)
	commit(t, b, 2)
	good1, good2 := rawAt(t, b, 1), rawAt(t, b, 2)
	noRes := frame(0, uv(0))
	if status, answer := post(t, srv.URL, concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(0, uv(1)))); status != 200 {
		t.Fatalf("push of b's first changeset: %d %s", status, answer)
	}
	// b's changeset 1 again, its values changed, then b's changeset 2.
	cs, err := changeset.Decode(good1)
	if err != nil {
		t.Fatal(err)
	}
	cs.Changes[0].Props[0].New = "forged"
	forged, err := changeset.Encode(nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	status, answer := post(t, srv.URL, concat(header(b), noRes, frame(1, uv(1), lp(forged)), frame(1, uv(2), lp(good2)), frame(0, uv(2))))
	if status != http.StatusUnprocessableEntity || !strings.Contains(answer, "content hash does not match") || !strings.Contains(answer, `"code":"refused"`) {
		t.Fatalf("forged push: %d %s", status, answer)
	}
	if a.R.LatestSeq() != 1 {
		t.Fatalf("the forged push applied something: latest %d", a.R.LatestSeq())
	}
	// The same identity with the held content is fine: skipped.
	if status, answer := post(t, srv.URL, concat(header(b), noRes, frame(1, uv(1), lp(good1)), frame(1, uv(2), lp(good2)), frame(0, uv(2)))); status != 200 || a.R.LatestSeq() != 2 {
		t.Fatalf("honest push: %d %s, latest %d", status, answer, a.R.LatestSeq())
	}
	verify(t, a)
}
