package merge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
)

var ctx = context.Background()

// newLocal makes a replica of database dbID in a temporary directory,
// closed when the test ends.
func newLocal(t *testing.T, dbID uuid.UUID) *merge.Local {
	t.Helper()
	l := newLocalAt(t, filepath.Join(t.TempDir(), "r"), dbID)
	t.Cleanup(func() { l.Close() })
	return l
}

// newLocalAt makes a replica of database db (uuid.Nil: a new one) in dir
// and opens it with its resolution database.
func newLocalAt(t *testing.T, dir string, db uuid.UUID) *merge.Local {
	t.Helper()
	r, err := replica.Init(dir, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	l, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func pull(t *testing.T, dst *merge.Local, src merge.Source, opts *merge.Options) merge.Report {
	t.Helper()
	rep, err := merge.Pull(ctx, src, dst, opts)
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	return rep
}

func get(t *testing.T, l *merge.Local, id uuid.UUID, name string) string {
	t.Helper()
	rec, err := l.R.Get("bug", id)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return rec.Get(name)
}

func TestPullBothWaysWithConflict(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	cs, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"status": "new", "title": "crash"}})
	if err != nil {
		t.Fatal(err)
	}
	id := cs.Changes[0].Record
	if rep := pull(t, b, a, nil); rep.Integrated != 1 || rep.Position != 1 {
		t.Fatalf("first pull: %+v", rep)
	}
	// Both edit status offline.
	a.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "open"}})
	b.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "closed"}})

	// No resolver: a clear failure, nothing merged.
	_, err = merge.Pull(ctx, a, b, nil)
	var ue *merge.UnresolvedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "--prefer") || !strings.Contains(err.Error(), `status: was "new", there "open", here "closed"`) {
		t.Fatalf("unresolved: %v", err)
	}
	before := b.R.LatestSeq()
	// Prefer mine: nullification, changeset, resolution.
	rep := pull(t, b, a, &merge.Options{Resolver: merge.Mine})
	if rep.Integrated != 3 || rep.Conflicts != 1 || b.R.LatestSeq() != before+3 {
		t.Fatalf("prefer mine: %+v", rep)
	}
	if got := get(t, b, id, "status"); got != "closed" {
		t.Fatalf("b status %q", got)
	}
	// a meets the same conflict and settles it from the resolution DB.
	rep = pull(t, a, b, nil)
	if rep.Resolutions != 1 || rep.Conflicts != 1 {
		t.Fatalf("a pulls b: %+v", rep)
	}
	if a.R.Digest() != b.R.Digest() {
		t.Fatalf("digests differ: a %s=%q b %q", a.R.Digest(), get(t, a, id, "status"), get(t, b, id, "status"))
	}
	// b now receives a's settlement (a nullification and a resolution
	// that change nothing it shows); after that, syncing adds nothing in
	// either direction, and nothing is ever echoed back.
	if rep := pull(t, b, a, nil); rep.Integrated != 2 || rep.Conflicts != 0 || a.R.Digest() != b.R.Digest() {
		t.Fatalf("b takes a's settlement: %+v", rep)
	}
	for i := 0; i < 2; i++ {
		if rep := pull(t, a, b, nil); rep.Integrated != 0 {
			t.Fatalf("a re-pulls: %+v", rep)
		}
		if rep := pull(t, b, a, nil); rep.Integrated != 0 || rep.Read != 0 {
			t.Fatalf("b re-pulls: %+v", rep)
		}
	}
	for _, l := range []*merge.Local{a, b} {
		v, err := l.R.Verify(ctx)
		if err != nil || !v.OK() {
			t.Fatalf("verify: %v %v", v.Problems, err)
		}
	}
}

func TestRefusals(t *testing.T) {
	a, b := newLocal(t, uuid.New()), newLocal(t, uuid.New())
	if _, err := merge.Pull(ctx, a, b, nil); !errors.Is(err, merge.ErrOtherDatabase) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("other database: %v", err)
	}
	if _, err := merge.Pull(ctx, a, b, &merge.Options{Force: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
	if _, err := merge.Pull(ctx, a, a, nil); !errors.Is(err, merge.ErrSameReplica) {
		t.Fatalf("itself: %v", err)
	}
}

func TestCloneCopiesAndStaysIndependent(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	var ids []uuid.UUID
	for i := range 50 {
		cs, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": strings.Repeat("x", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cs.Changes[0].Record)
	}
	a.R.Commit(ctx, replica.Edit{Type: "bug", Record: ids[3], Op: replica.Delete})
	dir := a.R.Dir()
	a.Close()
	src, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cdir := filepath.Join(t.TempDir(), "clone")
	c, rep, err := merge.Clone(ctx, src, cdir, nil, nil)
	if err != nil {
		t.Fatalf("clone: %v", err)
	}
	defer c.Close()
	if c.R.UUID() == src.R.UUID() || c.R.DatabaseUUID() != src.R.DatabaseUUID() || c.R.LatestSeq() != 51 || c.R.Digest() != src.R.Digest() || rep.Integrated != 51 {
		t.Fatalf("clone: uuid %s (source %s), %d changesets, report %+v", c.R.UUID(), src.R.UUID(), c.R.LatestSeq(), rep)
	}
	if v, err := c.R.Verify(ctx); err != nil || !v.OK() {
		t.Fatalf("verify clone: %v %v", v.Problems, err)
	}
	// The clone is a replica of its own: it writes under its own UUID,
	// pulling from the source adds nothing, and the source gets only the
	// clone's own changeset back.
	cs, err := c.R.Commit(ctx, replica.Edit{Type: "bug", Record: ids[0], Op: replica.Update, Set: map[string]string{"n": "changed"}})
	if err != nil || cs.Origin != c.R.UUID() || cs.Seq != 52 {
		t.Fatalf("commit on the clone: %v %v", cs, err)
	}
	if rep := pull(t, c, src, nil); rep.Integrated != 0 || rep.Read != 0 {
		t.Fatalf("pull after clone: %+v", rep)
	}
	src.Close()
	a, err = merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if rep := pull(t, a, c, nil); rep.Integrated != 1 || rep.Skipped != 51 {
		t.Fatalf("source pulls the clone: %+v", rep)
	}
	if a.R.Digest() != c.R.Digest() {
		t.Fatal("digests differ after the source pulled the clone")
	}
	// Cloning into a replica is refused.
	c.Close()
	if _, _, err := merge.Clone(ctx, a, cdir, nil, nil); !errors.Is(err, replica.ErrExists) {
		t.Fatalf("clone into an existing replica: %v", err)
	}
}

// A replica restored from an older copy of itself must not silently skip
// the changesets it wrote after that copy: peers hold them under numbers it
// would reuse. The pull refuses, and says so.
func TestRestoredReplicaRefused(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": "1"}})
	dir := a.R.Dir()
	a.Close()
	backup := filepath.Join(t.TempDir(), "backup")
	if err := os.CopyFS(backup, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	a, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": "2"}})
	pull(t, b, a, nil)
	a.Close()
	old, err := merge.Open(ctx, backup, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := merge.Pull(ctx, b, old, nil); err == nil || !strings.Contains(err.Error(), "restored from an older copy") {
		t.Fatalf("pull into a restored replica: %v", err)
	}
}

// conflicted makes a and b (one database) disagree on a ticket's status and
// returns its UUID.
func conflicted(t *testing.T) (a, b *merge.Local, id uuid.UUID) {
	t.Helper()
	db := uuid.New()
	a, b = newLocal(t, db), newLocal(t, db)
	cs, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"status": "new"}})
	if err != nil {
		t.Fatal(err)
	}
	id = cs.Changes[0].Record
	pull(t, b, a, nil)
	a.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "open"}})
	b.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"owner": "bill", "status": "closed"}})
	return a, b, id
}

// A question at the prompt is asked once, outside the commit, and its
// answer is recorded like any decision: stamped with its resolution.
func TestPromptAnswerRecorded(t *testing.T) {
	a, b, id := conflicted(t)
	asked := 0
	rep, err := merge.Pull(ctx, a, b, &merge.Options{Prompt: func(_ context.Context, c *merge.Conflict) (replica.Outcome, error) {
		asked++
		return c.Target, nil
	}})
	if err != nil || asked != 1 || rep.Conflicts != 1 || get(t, b, id, "status") != "closed" {
		t.Fatalf("prompted pull: %+v, %v, asked %d, status %q", rep, err, asked, get(t, b, id, "status"))
	}
	var stamps []int64
	b.Res.All(func(d resolution.Decision) error {
		if d.How == "prompt" {
			stamps = append(stamps, d.Stamp)
		}
		return nil
	})
	last, err := b.R.ReadChangeset(b.R.LatestSeq())
	if err != nil || !last.IsResolution || len(stamps) != 1 || stamps[0] != last.Created.UnixNano() {
		t.Fatalf("decision stamps %v, resolution %v (%v)", stamps, last, err)
	}
	// An answer that errors stops the pull with the conflict.
	a2, b2, _ := conflicted(t)
	_, err = merge.Pull(ctx, a2, b2, &merge.Options{Prompt: func(context.Context, *merge.Conflict) (replica.Outcome, error) {
		return replica.Outcome{}, errors.New("aborted")
	}})
	var ue *merge.UnresolvedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "aborted") {
		t.Fatalf("aborted prompt: %v", err)
	}
}

// noOld is a source that says it cannot send old values, as a foreign
// replica's gateway does.
type noOld struct{ *merge.Local }

func (noOld) SendsNoOldValues() bool { return true }

// Only a source that cannot send old values gets its old-value-less
// updates accepted as they come; a native replica's "" is a value.
func TestMissingOldValues(t *testing.T) {
	db := uuid.New()
	a, b := newLocal(t, db), newLocal(t, db)
	cs, _ := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"status": "new"}})
	id := cs.Changes[0].Record
	pull(t, b, a, nil)
	a.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"owner": "ann"}})
	b.R.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"owner": "bill"}})
	var ue *merge.UnresolvedError
	if _, err := merge.Pull(ctx, a, b, nil); !errors.As(err, &ue) {
		t.Fatalf("native source, update with old value \"\": %v", err)
	}
	rep, err := merge.Pull(ctx, noOld{a}, b, nil)
	if err != nil || rep.Conflicts != 1 || get(t, b, id, "owner") != "ann" {
		t.Fatalf("source without old values: %+v %v, owner %q", rep, err, get(t, b, id, "owner"))
	}
	var hows []string
	b.Res.All(func(d resolution.Decision) error { hows = append(hows, d.How); return nil })
	if fmt.Sprint(hows) != "[missing-old-values]" {
		t.Fatalf("decisions: %v", hows)
	}
}
