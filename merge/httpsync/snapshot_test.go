package httpsync_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
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
// instead of integrating its log; a snapshot cut in the middle leaves no
// replica behind, and the clone run again succeeds.
func TestCloneBySnapshot(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 2000)
	var snaps atomic.Int32
	srv := serve(t, a, nil, cutSnapshot(64<<10, &snaps))

	dir := filepath.Join(t.TempDir(), "c")
	_, _, err := merge.Clone(ctx, dial(t, srv.URL), dir, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "run the clone again") {
		t.Fatalf("clone over a cut snapshot: %v", err)
	}
	if _, err := replica.Open(dir, nil); !errors.Is(err, replica.ErrNoReplica) {
		t.Fatalf("a cut snapshot left something that opens: %v", err)
	}
	c, rep, err := merge.Clone(ctx, dial(t, srv.URL), dir, nil, nil)
	if err != nil {
		t.Fatalf("clone again: %v", err)
	}
	defer c.Close()
	if snaps.Load() != 2 {
		t.Fatalf("%d snapshot requests, want 2: the clone did not copy", snaps.Load())
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
