package replica_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

var ctx = context.Background()

// replicas numbers the replicas a test process makes, so each gets its own
// deterministic UUID space.
var replicas atomic.Uint32

// seqUUIDs returns a deterministic UUID source: prefix, then a counter.
func seqUUIDs(prefix byte) func() uuid.UUID {
	var mu sync.Mutex
	n := uint64(0)
	return func() uuid.UUID {
		mu.Lock()
		defer mu.Unlock()
		n++
		var id uuid.UUID
		id[0] = prefix
		binary.BigEndian.PutUint64(id[8:], n)
		id[6] = 0x40 | id[6]&0x0f
		id[8] = 0x80 | id[8]&0x3f
		return id
	}
}

func testOptions(fs vfs.FS) *replica.Options {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	return &replica.Options{
		FS:      fs,
		Creator: "tester@example.com",
		NewUUID: seqUUIDs(byte(0xa0 + replicas.Add(1))),
		Clock: func() time.Time {
			mu.Lock()
			defer mu.Unlock()
			clock = clock.Add(time.Second)
			return clock
		},
	}
}

func newReplica(t testing.TB) (*replica.Replica, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := replica.Init(dir, uuid.Nil, testOptions(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func create(t testing.TB, r *replica.Replica, typ string, kv ...string) uuid.UUID {
	t.Helper()
	set := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		set[kv[i]] = kv[i+1]
	}
	cs, err := r.Commit(ctx, replica.Edit{Type: typ, Op: replica.Create, Set: set})
	if err != nil {
		t.Fatal(err)
	}
	return cs.Changes[0].Record
}

func mustVerify(t testing.TB, r *replica.Replica) *replica.VerifyReport {
	t.Helper()
	rep, err := r.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify found problems:\n%s", strings.Join(rep.Problems, "\n"))
	}
	return rep
}

// readLog returns every changeset in r's log.
func readLog(t testing.TB, r *replica.Replica) []*changeset.Changeset {
	t.Helper()
	var css []*changeset.Changeset
	it := r.Log(1)
	for it.Next() {
		cs, err := it.Changeset()
		if err != nil {
			t.Fatal(err)
		}
		css = append(css, cs)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return css
}

func propsOf(rec *replica.Record) string {
	var b strings.Builder
	for _, p := range rec.Props {
		fmt.Fprintf(&b, "%s=%s ", p.Name, p.Value)
	}
	return strings.TrimSpace(b.String())
}

func TestRecordLifecycle(t *testing.T) {
	r, _ := newReplica(t)
	id := create(t, r, "bug", "title", "printer on fire", "status", "new")
	rec, err := r.Get("bug", id)
	if err != nil {
		t.Fatal(err)
	}
	if got := propsOf(rec); got != "status=new title=printer on fire" {
		t.Fatalf("props = %q", got)
	}
	if rec.LUID != 1 || rec.Creator != "tester@example.com" || rec.Origin != r.UUID() {
		t.Fatalf("record metadata = %+v", rec)
	}

	cs, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "open", "title": ""}})
	if err != nil {
		t.Fatal(err)
	}
	want := []changeset.PropChange{{Name: "status", Old: "new", New: "open"}, {Name: "title", Old: "printer on fire"}}
	if fmt.Sprint(cs.Changes[0].Props) != fmt.Sprint(want) {
		t.Fatalf("update recorded %v, want %v", cs.Changes[0].Props, want)
	}
	if cs, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "open"}}); cs != nil || err != nil {
		t.Fatalf("a no-op update committed %v, %v", cs, err)
	}

	var open []uuid.UUID
	if err := r.List("bug", map[string]string{"status": "open"}, func(rec *replica.Record) error {
		open = append(open, rec.UUID)
		return nil
	}); err != nil || len(open) != 1 || open[0] != id {
		t.Fatalf("list status=open = %v, %v", open, err)
	}
	if err := r.List("bug", map[string]string{"status": "new"}, func(*replica.Record) error {
		return errors.New("the index still lists the old value")
	}); err != nil {
		t.Fatal(err)
	}

	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Delete}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get("bug", id); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := r.List("bug", nil, func(*replica.Record) error { return errors.New("deleted record listed") }); err != nil {
		t.Fatal(err)
	}
	var hist []string
	if err := r.History("bug", id, func(cs *changeset.Changeset) error {
		hist = append(hist, fmt.Sprintf("%d:%s", cs.Seq, cs.Changes[0].Op))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(hist, " "); got != "1:add 2:update 3:delete" {
		t.Fatalf("history = %q", got)
	}
	if got, err := r.ResolveID("bug", "1"); err != nil || got != id {
		t.Fatalf("LUID 1 of a deleted record resolves to %v, %v", got, err)
	}
	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"a": "b"}}); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("update of a deleted record: %v", err)
	}
	if l, err := r.LUID("bug", id); err != nil || l != 1 {
		t.Fatalf("LUID of the deleted record = %d, %v", l, err)
	}
	// Added again (as a merge does when it undoes a delete): live with a
	// new LUID; the old LUID still finds it.
	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Create, Set: map[string]string{"title": "back"}}); err != nil {
		t.Fatal(err)
	}
	if rec, err := r.Get("bug", id); err != nil || rec.LUID != 2 {
		t.Fatalf("re-added record: %+v, %v", rec, err)
	}
	for _, l := range []string{"1", "2"} {
		if got, err := r.ResolveID("bug", l); err != nil || got != id {
			t.Fatalf("LUID %s resolves to %v, %v", l, got, err)
		}
	}
	mustVerify(t, r)
}

func TestResolveID(t *testing.T) {
	r, _ := newReplica(t)
	a := create(t, r, "bug", "n", "1")
	b := create(t, r, "bug", "n", "2")
	// Deterministic UUIDs: ab000000-0000-4000-8000-00000000000N.
	if got, err := r.ResolveID("bug", a.String()); err != nil || got != a {
		t.Fatalf("full UUID: %v %v", got, err)
	}
	if got, err := r.ResolveID("bug", "2"); err != nil || got != b {
		t.Fatalf("LUID 2: %v %v", got, err)
	}
	var amb *replica.AmbiguousIDError
	if _, err := r.ResolveID("bug", a.String()[:4]); !errors.As(err, &amb) || len(amb.Candidates) != 2 ||
		!strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) {
		t.Fatalf("ambiguous prefix: %v", err)
	}
	if got, err := r.ResolveID("bug", strings.ReplaceAll(b.String(), "-", "")); err != nil || got != b {
		t.Fatalf("dashless: %v %v", got, err)
	}
	c := uuid.MustParse("cd0e0000-0000-4000-8000-000000000001")
	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: c, Op: replica.Create}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ResolveID("bug", "cd0e"); err != nil || got != c {
		t.Fatalf("unique prefix: %v %v", got, err)
	}
	if _, err := r.ResolveID("task", "1"); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("LUID of another type: %v", err)
	}
	if _, err := r.ResolveID("bug", "zzzz"); !errors.Is(err, replica.ErrNotFound) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := replica.Open(dir, nil); !errors.Is(err, replica.ErrNoReplica) || !strings.Contains(err.Error(), "prophet init") {
		t.Fatalf("open of an empty dir: %v", err)
	}
	r, err := replica.Init(dir, uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := replica.Open(dir, nil); !errors.Is(err, replica.ErrInUse) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: %v", err)
	}
	r.Close()
	if _, err := replica.Init(dir, uuid.Nil, nil); !errors.Is(err, replica.ErrExists) {
		t.Fatalf("init over a replica: %v", err)
	}
	r, err = replica.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	// A Pebble DB that is not a replica.
	other := t.TempDir()
	db, err := pebble.Open(other+"/db", &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Set([]byte("hello"), []byte("world"), pebble.Sync)
	db.Close()
	if _, err := replica.Open(other, nil); !errors.Is(err, replica.ErrCorrupt) || !strings.Contains(err.Error(), "not a prophet replica") {
		t.Fatalf("open of a foreign database: %v", err)
	}
}

func TestIntegrate(t *testing.T) {
	a, _ := newReplica(t)
	b, _ := newReplica(t)
	id := create(t, a, "bug", "status", "new")
	if _, err := a.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"status": "open"}}); err != nil {
		t.Fatal(err)
	}
	css := readLog(t, a)
	out, skipped, err := b.Integrate(ctx, css...)
	if err != nil || len(out) != 2 || skipped != 0 {
		t.Fatalf("integrate: %d appended, %d skipped, %v", len(out), skipped, err)
	}
	if b.Ticket(a.UUID()) != 2 || b.Digest() != a.Digest() {
		t.Fatalf("ticket %d, digests %s vs %s", b.Ticket(a.UUID()), b.Digest(), a.Digest())
	}
	// Again: exactly once.
	if out, skipped, err := b.Integrate(ctx, css...); err != nil || len(out) != 0 || skipped != 2 {
		t.Fatalf("re-integrate: %d appended, %d skipped, %v", len(out), skipped, err)
	}
	rec, _ := b.Get("bug", id)
	if rec.Origin != a.UUID() {
		t.Fatalf("origin not kept: %v", rec.Origin)
	}
	// Its own changesets come back to a as no-ops, unless they differ from
	// what a wrote under that number (a was restored and diverged).
	if out, skipped, err := a.Integrate(ctx, css...); err != nil || len(out) != 0 || skipped != 2 {
		t.Fatalf("echo to the origin: %d appended, %d skipped, %v", len(out), skipped, err)
	}
	forged := *css[1]
	forged.Creator = "someone else"
	if _, _, err := a.Integrate(ctx, &forged); err == nil || !strings.Contains(err.Error(), "restored from an older copy") {
		t.Fatalf("a different changeset under the origin's own number: %v", err)
	}

	// An update whose old value is not the current one is refused, saying
	// exactly why.
	theirs := &changeset.Changeset{Origin: uuid.New(), OriginSeq: 1, Created: time.Unix(1, 0),
		Changes: []changeset.Change{{RecordType: "bug", Record: id, Op: changeset.Update,
			Props: []changeset.PropChange{{Name: "status", Old: "new", New: "closed"}}}}}
	var ce *replica.ConflictError
	if _, _, err := b.Integrate(ctx, theirs); !errors.As(err, &ce) || ce.Prop != "status" || ce.Actual != "open" || ce.Expected != "new" {
		t.Fatalf("conflict: %v", err)
	}
	// A unit fails as a whole: the local change before the conflicting one
	// does not land either.
	before := b.LatestSeq()
	local := &changeset.Changeset{Created: time.Unix(1, 0),
		Changes: []changeset.Change{{RecordType: "bug", Record: id, Op: changeset.Update,
			Props: []changeset.PropChange{{Name: "owner", New: "me"}}}}}
	if _, _, err := b.Integrate(ctx, local, theirs); !errors.Is(err, replica.ErrConflict) {
		t.Fatalf("unit with a conflict: %v", err)
	}
	if b.LatestSeq() != before || b.Ticket(theirs.Origin) != 0 {
		t.Fatalf("a failed unit left changesets (%d -> %d) or a ticket", before, b.LatestSeq())
	}
	// Settled (what merge does), the same changeset lands between a
	// nullification and a resolution, all three in one unit; the settler
	// sees the conflict as both sides would.
	var seen []replica.Conflict
	mine := func(_ *changeset.Changeset, cs []replica.Conflict, _ time.Time) ([]replica.Outcome, error) {
		seen = cs
		out := make([]replica.Outcome, len(cs))
		for i := range cs {
			out[i] = cs[i].Target
		}
		return out, nil
	}
	out, _, err = b.IntegrateSettled(ctx, mine, theirs)
	if err != nil || len(out) != 3 || !out[0].IsNullification || out[1].ID() != theirs.ID() || !out[2].IsResolution || out[0].Origin != b.UUID() {
		t.Fatalf("settled: %v, %v", out, err)
	}
	if len(seen) != 1 || seen[0].Record != id || fmt.Sprint(seen[0].Base, seen[0].Source, seen[0].Target) != "[{status new}] {true [{status closed}]} {true [{status open}]}" {
		t.Fatalf("the settler saw %+v", seen)
	}
	if rec, _ := b.Get("bug", id); rec.Get("status") != "open" || b.Ticket(theirs.Origin) != 1 {
		t.Fatalf("after resolution: %s, ticket %d", propsOf(rec), b.Ticket(theirs.Origin))
	}
	// The resolution is newer than everything: it wins wherever the three
	// travel, in whatever order they arrive.
	if !out[2].Created.After(out[1].Created) || !out[2].Created.After(out[0].Created) {
		t.Fatalf("resolution at %v is not after %v and %v", out[2].Created, out[0].Created, out[1].Created)
	}
	mustVerify(t, b)
}

func TestTicketsNeverAheadOfLog(t *testing.T) {
	r, _ := newReplica(t)
	create(t, r, "bug")
	if err := r.SetTicket(ctx, r.UUID(), 5); err == nil || !strings.Contains(err.Error(), "ahead of the log") {
		t.Fatalf("ticket ahead of log accepted: %v", err)
	}
	if err := r.SetTicket(ctx, r.UUID(), 1); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTicket(ctx, uuid.New(), 1); err == nil {
		t.Fatal("ticket for an origin the log has never seen accepted")
	}
	mustVerify(t, r)
}

func TestBulkStopsAtBadUnit(t *testing.T) {
	r, _ := newReplica(t)
	n := 0
	res, err := r.Bulk(ctx, func() (*replica.Unit, error) {
		n++
		switch {
		case n == 1500:
			return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Record: uuid.New(), Op: replica.Update, Set: map[string]string{"a": "b"}}}}, nil
		case n > 2000:
			return nil, nil
		}
		return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Op: replica.Create, Set: map[string]string{"n": fmt.Sprint(n)}}}}, nil
	})
	if !errors.Is(err, replica.ErrNotFound) || !strings.Contains(err.Error(), "unit 1500") {
		t.Fatalf("bulk error: %v", err)
	}
	if res.Changesets != 1499 || r.LatestSeq() != 1499 {
		t.Fatalf("bulk committed %d (latest %d), want the 1499 before the bad unit", res.Changesets, r.LatestSeq())
	}
	rep := mustVerify(t, r)
	if rep.Records != 1499 {
		t.Fatalf("verify counted %d records", rep.Records)
	}
}

func TestGroupCommitConcurrent(t *testing.T) {
	r, _ := newReplica(t)
	const writers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if r.LatestSeq() != writers*each {
		t.Fatalf("latest = %d", r.LatestSeq())
	}
	st := r.Stats()
	if st.Syncs >= st.Changesets {
		t.Fatalf("%d syncs for %d changesets: concurrent commits did not share fsyncs", st.Syncs, st.Changesets)
	}
	t.Logf("%d changesets in %d syncs", st.Changesets, st.Syncs)
	mustVerify(t, r)
}

// Open waits up to LockWait for another holder to close the replica.
func TestOpenWaitsForLock(t *testing.T) {
	dir := t.TempDir()
	r, err := replica.Init(dir, uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ie *replica.InUseError
	if _, err := replica.Open(dir, &replica.Options{LockWait: 20 * time.Millisecond}); !errors.As(err, &ie) || !ie.SameProcess {
		t.Fatalf("open while held: %v", err)
	}
	var closing atomic.Bool
	go func() {
		time.Sleep(100 * time.Millisecond)
		closing.Store(true)
		r.Close()
	}()
	r2, err := replica.Open(dir, &replica.Options{LockWait: 10 * time.Second})
	if err != nil {
		t.Fatalf("open after the holder closed: %v", err)
	}
	if !closing.Load() {
		t.Fatal("opened while the first holder still had the replica")
	}
	r2.Close()
}

// Bulk returns only once everything it loaded is durable, also when the
// last batch is empty (the load ended on a batch boundary).
func TestBulkReturnsDurable(t *testing.T) {
	for _, units := range []int{4, 5} {
		opts := testOptions(nil)
		opts.MaxGroupChangesets = 2
		r, err := replica.Init(t.TempDir(), uuid.Nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		res, err := r.Bulk(ctx, func() (*replica.Unit, error) {
			if n++; n > units {
				return nil, nil
			}
			return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Op: replica.Create}}}, nil
		})
		if err != nil || res.LastSeq != uint64(units) || r.LatestSeq() != uint64(units) {
			t.Fatalf("%d units: result %+v, durable %d, %v", units, res, r.LatestSeq(), err)
		}
		r.Close()
	}
}

// A ticket set on its own is written.
func TestSetTicketAlone(t *testing.T) {
	r, dir := newReplica(t)
	origin := uuid.New()
	var css []*changeset.Changeset
	for i := uint64(1); i <= 3; i++ {
		css = append(css, &changeset.Changeset{Origin: origin, OriginSeq: i, Created: time.Unix(1, 0),
			Changes: []changeset.Change{{RecordType: "bug", Record: uuid.New(), Op: changeset.Add}}})
	}
	if _, _, err := r.Integrate(ctx, css...); err != nil {
		t.Fatal(err)
	}
	if err := r.SetTicket(ctx, origin, 1); err != nil || r.Ticket(origin) != 1 {
		t.Fatalf("ticket %d, %v", r.Ticket(origin), err)
	}
	r.Close()
	r2, err := replica.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r2.Ticket(origin) != 1 {
		t.Fatalf("ticket after reopen %d", r2.Ticket(origin))
	}
}

// Bad calls get errors, never a dead committer.
func TestBadCallsDoNotKillTheCommitter(t *testing.T) {
	r, _ := newReplica(t)
	if _, _, err := r.Integrate(ctx, nil); err == nil || !strings.Contains(err.Error(), "nil") {
		t.Fatalf("nil changeset: %v", err)
	}
	if _, err := r.Bulk(ctx, func() (*replica.Unit, error) { panic("boom") }); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panicking unit source: %v", err)
	}
	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: uuid.New()}); err == nil || !strings.Contains(err.Error(), "no valid op") {
		t.Fatalf("edit without op: %v", err)
	}
	create(t, r, "bug", "still", "works")
	mustVerify(t, r)
}

func TestUseAfterClose(t *testing.T) {
	r, err := replica.Init(t.TempDir(), uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := create(t, r, "bug")
	r.Close()
	if _, err := r.Get("bug", id); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create}); !errors.Is(err, replica.ErrClosed) {
		t.Fatalf("Commit after Close: %v", err)
	}
	it := r.Log(1)
	if it.Next() || !errors.Is(it.Close(), replica.ErrClosed) {
		t.Fatal("Log after Close did not fail with ErrClosed")
	}
}

// Waiting for the lock ends when the context does.
func TestOpenContextCancelsLockWait(t *testing.T) {
	dir := t.TempDir()
	r, err := replica.Init(dir, uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := replica.OpenContext(c, dir, &replica.Options{LockWait: time.Hour}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("open with a cancelled wait: %v", err)
	}
}

// Local commits stage in parallel (fast.go): many writers updating the same
// few records, while the committer integrates changesets from elsewhere on
// the same records, must leave every record's history in log order with
// exact old values, and a replica that verifies.
func TestParallelCommitsOnHotRecords(t *testing.T) {
	r, _ := newReplica(t)
	const hot = 3
	ids := make([]uuid.UUID, hot)
	for i := range ids {
		cs, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"n": "0"}})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = cs.Changes[0].Record
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := ids[(w+i)%hot]
				if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Record: id, Op: replica.Update, Set: map[string]string{"n": fmt.Sprintf("w%d-%d", w, i)}}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Meanwhile, the committer path: changesets from elsewhere on other
	// records, and on a record of their own type.
	wg.Add(1)
	go func() {
		defer wg.Done()
		peer := uuid.New()
		for i := range 20 {
			cs := &changeset.Changeset{Origin: peer, OriginSeq: uint64(i + 1), Created: time.Unix(int64(i+1), 0),
				Changes: []changeset.Change{{RecordType: "note", Record: uuid.New(), Op: changeset.Add,
					Props: []changeset.PropChange{{Name: "text", New: fmt.Sprint(i)}}}}}
			if _, _, err := r.Integrate(ctx, cs); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, want := r.LatestSeq(), uint64(hot+writers*each+20); got != want {
		t.Fatalf("latest = %d, want %d", got, want)
	}
	// Each record's history chains: every update's old value is the value
	// the changeset before it (in log order) set, and the record holds the
	// last one.
	for _, id := range ids {
		prev, last := "0", uint64(0)
		if err := r.History("bug", id, func(cs *changeset.Changeset) error {
			if cs.Seq <= last {
				return fmt.Errorf("history out of order: %d after %d", cs.Seq, last)
			}
			last = cs.Seq
			p, ok := cs.Changes[0].Prop("n")
			if !ok {
				return fmt.Errorf("changeset %d does not change n", cs.Seq)
			}
			if cs.Changes[0].Op == changeset.Update && p.Old != prev {
				return fmt.Errorf("changeset %d: old value %q, but the one before set %q", cs.Seq, p.Old, prev)
			}
			prev = p.New
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		rec, err := r.Get("bug", id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Get("n") != prev {
			t.Fatalf("record holds %q, its last changeset set %q", rec.Get("n"), prev)
		}
	}
	mustVerify(t, r)
}

// Follow hands over the log, then each new changeset as it becomes durable,
// in order, until the context ends.
func TestFollow(t *testing.T) {
	r, _ := newReplica(t)
	for i := range 3 {
		if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"i": fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	got := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		done <- r.Follow(fctx, 1, func(cs *changeset.Changeset) error {
			got <- cs.Seq
			return nil
		})
	}()
	// History after 1, then live commits, from several goroutines.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"a": "b"}}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for want := uint64(2); want <= 23; want++ {
		select {
		case seq := <-got:
			if seq != want {
				t.Fatalf("got changeset %d, want %d", seq, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("changeset %d never came", want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel: %v", err)
	}
	// A follower of a replica that closes stops with ErrClosed.
	go func() { done <- r.Follow(ctx, r.LatestSeq(), func(*changeset.Changeset) error { return nil }) }()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, replica.ErrClosed) {
			t.Fatalf("Follow after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not stop at Close")
	}
}

// A bulk load reads what the batches before it wrote, also those that are
// applied while it stages (each batch reads Pebble through one iterator,
// made at its first read): in tiny batches, every update of a record
// records the previous update's value as its old value.
func TestBulkReadsEarlierBatches(t *testing.T) {
	opts := testOptions(nil)
	opts.MaxGroupChangesets = 2
	r, err := replica.Init(t.TempDir(), uuid.Nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	const records, updates = 7, 600
	ids := make([]uuid.UUID, records)
	for i := range ids {
		ids[i] = uuid.New()
	}
	n := 0
	if _, err := r.Bulk(ctx, func() (*replica.Unit, error) {
		if n++; n > records+updates {
			return nil, nil
		}
		i := (n - 1) % records
		if n <= records {
			return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Record: ids[i], Op: replica.Create, Set: map[string]string{"v": "0"}}}}, nil
		}
		return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Record: ids[i], Op: replica.Update, Set: map[string]string{"v": strconv.Itoa(n)}}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	last := map[uuid.UUID]string{}
	it := r.Log(1)
	defer it.Close()
	for it.Next() {
		cs, err := it.Changeset()
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range cs.Changes {
			for _, p := range ch.Props {
				if p.Old != last[ch.Record] {
					t.Fatalf("changeset %d: %s: old value %q, but the previous one wrote %q", cs.Seq, ch.Record, p.Old, last[ch.Record])
				}
				last[ch.Record] = p.New
			}
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	rep, err := r.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
}

// Commit keeps no reference to an edit's Set (Edit's contract): a caller
// that reuses its map for the next commit changes neither the record nor
// the changeset it got back.
func TestCommitKeepsNoReferenceToSet(t *testing.T) {
	r, _ := newReplica(t)
	set := map[string]string{"status": "open", "owner": "alice"}
	var ids []uuid.UUID
	var css []*changeset.Changeset
	for _, status := range []string{"open", "closed"} {
		set["status"] = status
		cs, err := r.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: set})
		if err != nil {
			t.Fatal(err)
		}
		ids, css = append(ids, cs.Changes[0].Record), append(css, cs)
	}
	set["status"], set["owner"] = "reused", "bob"
	for i, want := range []string{"open", "closed"} {
		rec, err := r.Get("bug", ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if got := propsOf(rec); got != "owner=alice status="+want {
			t.Errorf("record %d after its map was reused: %s", i, got)
		}
		if got := css[i].Changes[0].Props[1].New; got != want {
			t.Errorf("changeset %d after its map was reused: status %q, want %q", i, got, want)
		}
	}
}
