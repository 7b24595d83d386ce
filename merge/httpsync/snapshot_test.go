package httpsync_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// cutSnapshot cuts the first /v1/snapshot answer after limit bytes, and
// counts the snapshot requests.
func cutSnapshot(limit int64, n *atomic.Int32) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/snapshot" && n.Add(1) == 1 && limit >= 0 {
				w = &cutWriter{ResponseWriter: w, left: limit}
			}
			h.ServeHTTP(w, r)
		})
	}
}

// A clone over HTTP copies the served replica's database (a snapshot)
// instead of integrating its log; a snapshot cut in the middle is asked for
// again, and the clone completes.
func TestCloneBySnapshot(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 2000)
	var snaps atomic.Int32
	srv := serve(t, a, nil, cutSnapshot(64<<10, &snaps))

	dir := filepath.Join(t.TempDir(), "c")
	c, rep, err := merge.Clone(ctx, dial(t, srv.URL), dir, nil, nil)
	if err != nil {
		t.Fatalf("clone over a snapshot cut once: %v", err)
	}
	defer c.Close()
	if snaps.Load() != 2 {
		t.Fatalf("%d snapshot requests, want 2 (the cut one, then the rest)", snaps.Load())
	}
	if c.R.UUID() == a.R.UUID() || c.R.DatabaseUUID() != db || c.R.Digest() != a.R.Digest() || c.R.LatestSeq() != 2000 || rep.Integrated != 2000 {
		t.Fatalf("clone: %+v, latest %d", rep, c.R.LatestSeq())
	}
	// A replica of its own: what it writes goes back to a once, and a
	// pull from a afterwards reads nothing.
	commit(t, c, 3)
	if rep, err := merge.Pull(ctx, c, a, nil); err != nil || rep.Integrated != 3 {
		t.Fatalf("a pulls the clone: %+v %v", rep, err)
	}
	if rep, err := merge.Pull(ctx, dial(t, srv.URL), c, nil); err != nil || rep.Integrated != 0 {
		t.Fatalf("the clone pulls a: %+v %v", rep, err)
	}
	verify(t, a, c)
}

// A clone cut in the middle of a snapshot whose database is in table files
// resumes: the second request names the table files received whole, the
// server does not send them again, and the clone is the same.
func TestCloneResumesSnapshot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	r, err := replica.Init(dir, uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	// Three rounds of commits, each flushed to a table file by Close.
	for range 3 {
		l, err := merge.Open(ctx, dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		commit(t, l, 1500)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	a, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })

	// The whole snapshot's size, to cut the clone's half-way.
	var (
		snaps atomic.Int32
		haves []string
		mu    sync.Mutex
	)
	full := serve(t, a, nil, nil)
	resp, err := http.Get(full.URL + "/v1/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	size, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	srv := serve(t, a, nil, func(h http.Handler) http.Handler {
		cut := cutSnapshot(size/2, &snaps)(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/snapshot" {
				mu.Lock()
				haves = append(haves, r.URL.Query().Get("have"))
				mu.Unlock()
			}
			cut.ServeHTTP(w, r)
		})
	})
	c, _, err := merge.Clone(ctx, dial(t, srv.URL), filepath.Join(t.TempDir(), "c"), nil, nil)
	if err != nil {
		t.Fatalf("clone over a snapshot cut half-way: %v", err)
	}
	defer c.Close()
	if len(haves) != 2 || haves[0] != "" || !strings.Contains(haves[1], ".sst") {
		t.Fatalf("snapshot requests' have lists: %q; want none, then the table files received", haves)
	}
	if c.R.Digest() != a.R.Digest() || c.R.LatestSeq() != 4500 {
		t.Fatalf("the resumed clone: latest %d, digest %s; the source %s", c.R.LatestSeq(), c.R.Digest(), a.R.Digest())
	}
	verify(t, a, c)
}
