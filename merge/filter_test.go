package merge_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// filtered is a source that filters on its side (merge.FilteredSource),
// as a server does, and counts what it sends.
type filtered struct {
	*merge.Local
	sent int
}

func (f *filtered) ChangesetsFor(ctx context.Context, after uint64, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64, fn func(uint64, []byte) error) (uint64, error) {
	return merge.Filter(ctx, f.Local, after, tickets, self, selfLatest, func(seq uint64, raw []byte) error {
		f.sent++
		return fn(seq, raw)
	})
}

// A pull from a FilteredSource receives only what it lacks, and reports
// and ends exactly as a plain pull: same counts, same position, same
// records.
func TestFilteredSource(t *testing.T) {
	db := uuid.New()
	a, b1, b2 := newLocal(t, db), newLocal(t, db), newLocal(t, db)
	edit := func(l *merge.Local, n int) {
		for range n {
			if _, err := l.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": "x"}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	edit(a, 10)
	pull(t, b1, a, nil)
	pull(t, b2, a, nil)
	edit(b1, 5)
	edit(b2, 5)
	pull(t, a, b1, nil)
	pull(t, a, b2, nil)
	// a's log: 10 of its own, then b1's 5, then b2's 5.
	f := &filtered{Local: a}
	got := pull(t, b1, f, nil)
	want := pull(t, b2, a, nil)
	if f.sent != 5 {
		t.Fatalf("the filtered source sent %d, want 5", f.sent)
	}
	if got.Read != want.Read || got.Skipped != want.Skipped || got.Integrated != want.Integrated || got.Position != want.Position || got.Position != 20 {
		t.Fatalf("filtered %+v, plain %+v", got, want)
	}
	if b1.R.Digest() != a.R.Digest() || b2.R.Digest() != a.R.Digest() {
		t.Fatal("digests differ")
	}
	// Nothing new: the filtered source sends nothing, the position stays.
	f.sent = 0
	edit(b2, 1)
	pull(t, a, b2, nil)
	if rep := pull(t, b1, f, nil); f.sent != 1 || rep.Read != 1 || rep.Position != 21 {
		t.Fatalf("second filtered pull: sent %d, %+v", f.sent, rep)
	}
}
