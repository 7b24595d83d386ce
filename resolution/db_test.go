package resolution_test

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/resolution"
)

var ctx = context.Background()

func open(t testing.TB, dir string, self uuid.UUID) *resolution.DB {
	t.Helper()
	db, err := resolution.Open(dir, self, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newDB(t testing.TB, self uuid.UUID) *resolution.DB {
	return open(t, filepath.Join(t.TempDir(), "resolution"), self)
}

func record(t testing.TB, db *resolution.DB, d resolution.Decision) resolution.Decision {
	t.Helper()
	got, err := db.Record(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func integrate(t testing.TB, db *resolution.DB, ds ...resolution.Decision) int {
	t.Helper()
	n, err := db.Integrate(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func tickets(t testing.TB, db *resolution.DB) map[uuid.UUID]uint64 {
	t.Helper()
	m, err := db.Tickets()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func all(t testing.TB, db *resolution.DB) []resolution.Decision {
	t.Helper()
	var out []resolution.Decision
	if err := db.All(func(d resolution.Decision) error { out = append(out, d); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func since(t testing.TB, db *resolution.DB, have map[uuid.UUID]uint64) []resolution.Decision {
	t.Helper()
	var out []resolution.Decision
	if err := db.Since(have, func(d resolution.Decision) error { out = append(out, d); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// outcomes: three different ways to settle conflict().
var (
	mine   = conflict().Target
	theirs = conflict().Source
	merged = resolution.Outcome{Live: true, Props: props("owner", "bob", "status", "stalled")}
)

func TestRecordAssignsSeq(t *testing.T) {
	db := newDB(t, originA)
	c := conflict()
	for i := uint64(1); i <= 3; i++ {
		d := decision(c, theirs, "theirs", int64(i))
		d.Origin, d.Seq = originB, 99 // ignored
		got := record(t, db, d)
		if got.Origin != originA || got.Seq != i {
			t.Fatalf("decision %d recorded as %s@%d", i, got.Origin, got.Seq)
		}
	}
	if got := tickets(t, db); !maps.Equal(got, map[uuid.UUID]uint64{originA: 3}) {
		t.Fatalf("tickets %v", got)
	}
	bad := decision(c, theirs, "theirs", 1)
	bad.Fingerprint[0]++
	if _, err := db.Record(ctx, bad); !errors.Is(err, resolution.ErrInvalid) {
		t.Fatalf("a wrong fingerprint: got %v, want ErrInvalid", err)
	}
	if got := tickets(t, db)[originA]; got != 3 {
		t.Fatalf("a refused decision moved the ticket to %d", got)
	}
}

func TestRecordConcurrent(t *testing.T) {
	db := newDB(t, originA)
	c := conflict()
	var wg sync.WaitGroup
	seqs := make(chan uint64, 80)
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				d, err := db.Record(ctx, decision(c, theirs, "theirs", int64(g*10+i+1)))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- d.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] || s < 1 || s > 80 {
			t.Fatalf("sequence number %d given twice or out of 1..80", s)
		}
		seen[s] = true
	}
	if len(all(t, db)) != 80 || tickets(t, db)[originA] != 80 {
		t.Fatalf("want 80 decisions, ticket 80; got %d, %d", len(all(t, db)), tickets(t, db)[originA])
	}
}

func TestLookupMajority(t *testing.T) {
	db := newDB(t, originA)
	c := conflict()
	f := c.Fingerprint()
	if _, _, total, ok, err := db.Lookup(f); ok || total != 0 || err != nil {
		t.Fatalf("empty database: ok %v, total %d, err %v", ok, total, err)
	}
	// mine twice (old), theirs once (newest): mine wins by votes.
	record(t, db, decision(c, mine, "mine", 10))
	integrate(t, db,
		from(originB, 1, decision(c, mine, "prompt", 20)),
		from(originC, 1, decision(c, theirs, "theirs", 30)))
	// An unrelated conflict's decisions are not counted.
	other := conflict()
	other.Record = recB
	integrate(t, db, from(originC, 2, decision(other, other.Source, "theirs", 40)))

	w, votes, total, ok, err := db.Lookup(f)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if !reflect.DeepEqual(w.Final, mine) || votes != 2 || total != 3 {
		t.Fatalf("winner %v with %d of %d votes, want mine with 2 of 3", w.Final, votes, total)
	}
	if w.Origin != originB || w.Seq != 1 {
		t.Fatalf("winner is %s@%d, want the newest decision for mine, %s@1", w.Origin, w.Seq, originB)
	}
	// The other side sees the conflict swapped; it finds the same decisions.
	swapped := c
	swapped.Source, swapped.Target = c.Target, c.Source
	if _, _, total, _, _ := db.Lookup(swapped.Fingerprint()); total != 3 {
		t.Fatalf("the swapped conflict finds %d decisions, want 3", total)
	}
	if _, _, total, ok, _ := db.Lookup(resolution.Fingerprint{1}); ok || total != 0 {
		t.Fatalf("an unknown fingerprint: ok %v, total %d", ok, total)
	}
}

func TestLookupTie(t *testing.T) {
	c := conflict()
	for name, tc := range map[string]struct {
		ds   []resolution.Decision
		want resolution.Outcome
	}{
		"newer stamp": {[]resolution.Decision{
			from(originC, 1, decision(c, mine, "mine", 100)),
			from(originB, 1, decision(c, theirs, "theirs", 200))}, theirs},
		"same stamp, greater origin": {[]resolution.Decision{
			from(originC, 1, decision(c, mine, "mine", 100)),
			from(originB, 1, decision(c, theirs, "theirs", 100))}, mine},
		"same stamp and origin, greater seq": {[]resolution.Decision{
			from(originB, 1, decision(c, merged, "prompt", 100)),
			from(originB, 2, decision(c, theirs, "theirs", 100))}, theirs},
		"a tie of two each": {[]resolution.Decision{
			from(originB, 1, decision(c, mine, "mine", 500)),
			from(originB, 2, decision(c, theirs, "theirs", 100)),
			from(originC, 1, decision(c, mine, "mine", 50)),
			from(originC, 2, decision(c, theirs, "theirs", 501)),
			from(originC, 3, decision(c, merged, "prompt", 9999))}, theirs},
	} {
		t.Run(name, func(t *testing.T) {
			db := newDB(t, originA)
			integrate(t, db, tc.ds...)
			w, votes, total, ok, err := db.Lookup(c.Fingerprint())
			if err != nil || !ok {
				t.Fatal(ok, err)
			}
			if !reflect.DeepEqual(w.Final, tc.want) || total != len(tc.ds) {
				t.Fatalf("winner %v (%d of %d votes), want %v", w.Final, votes, total, tc.want)
			}
		})
	}
}

func TestSync(t *testing.T) {
	a, b := newDB(t, originA), newDB(t, originB)
	c, other := conflict(), conflict()
	other.Record = recB
	record(t, a, decision(c, mine, "mine", 1))
	record(t, a, decision(other, other.Source, "theirs", 2))
	integrate(t, a, from(originC, 1, decision(c, mine, "prompt", 3)))
	record(t, b, decision(c, theirs, "theirs", 4))

	send := func(from, to *resolution.DB) int {
		return integrate(t, to, since(t, from, tickets(t, to))...)
	}
	if n := send(a, b); n != 3 {
		t.Fatalf("a sent b %d decisions, want 3", n)
	}
	if n := send(a, b); n != 0 {
		t.Fatalf("sending again added %d", n)
	}
	if n := send(b, a); n != 1 {
		t.Fatalf("b sent a %d decisions, want 1 (its own)", n)
	}
	// Re-sending decisions already held, a's own included, adds nothing.
	if n := integrate(t, a, all(t, b)...); n != 0 {
		t.Fatalf("re-sending everything added %d", n)
	}
	ta, tb := tickets(t, a), tickets(t, b)
	want := map[uuid.UUID]uint64{originA: 2, originB: 1, originC: 1}
	if !maps.Equal(ta, want) || !maps.Equal(tb, want) {
		t.Fatalf("tickets a %v, b %v, want %v", ta, tb, want)
	}
	if da, db := all(t, a), all(t, b); !reflect.DeepEqual(da, db) || len(da) != 4 {
		t.Fatalf("a and b hold different decisions:\n%v\n%v", da, db)
	}
	// Since honours what the peer has, per origin.
	got := since(t, a, map[uuid.UUID]uint64{originA: 1, originC: 1})
	if len(got) != 2 || got[0].Origin != originA || got[0].Seq != 2 || got[1].Origin != originB {
		t.Fatalf("since a@1, c@1: %v", got)
	}
	// fn's error stops Since.
	stop := errors.New("stop")
	n := 0
	if err := a.Since(nil, func(resolution.Decision) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Since returned %v after %d calls", err, n)
	}
	// Both now settle the conflict the same way: mine (a and c) over theirs (b).
	for _, db := range []*resolution.DB{a, b} {
		w, votes, total, _, _ := db.Lookup(c.Fingerprint())
		if !reflect.DeepEqual(w.Final, mine) || votes != 2 || total != 3 {
			t.Fatalf("lookup: %v, %d of %d", w.Final, votes, total)
		}
	}
}

func TestIntegrateRefuses(t *testing.T) {
	c := conflict()
	a := newDB(t, originA)
	record(t, a, decision(c, mine, "mine", 1))
	b := newDB(t, originB)
	integrate(t, b, from(originC, 1, decision(c, mine, "x", 1)))
	before := all(t, b)

	cases := map[string]struct {
		db   *resolution.DB
		ds   []resolution.Decision
		want string
	}{
		"a gap": {b, []resolution.Decision{
			from(originA, 1, decision(c, mine, "x", 2)), // fine on its own
			from(originC, 3, decision(c, mine, "x", 3))}, "arrived before"},
		"a gap in a new origin": {b, []resolution.Decision{from(originA, 2, decision(c, mine, "x", 2))}, "arrived before"},
		"own decision not held": {a, []resolution.Decision{
			from(originC, 1, decision(c, mine, "x", 2)),
			from(originA, 2, decision(c, mine, "x", 2))}, "re-clone"},
		"own decision different": {a, []resolution.Decision{from(originA, 1, decision(c, theirs, "theirs", 1))}, "re-clone"},
		"another's different":    {b, []resolution.Decision{from(originC, 1, decision(c, mine, "y", 1))}, "re-clone"},
		"invalid":                {b, []resolution.Decision{from(originA, 1, decision(c, mine, "", 1))}, "invalid"},
	}
	for name, tc := range cases {
		held, was := tickets(t, tc.db), all(t, tc.db)
		_, err := tc.db.Integrate(ctx, tc.ds)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", name, err, tc.want)
		}
		if !maps.Equal(held, tickets(t, tc.db)) || !reflect.DeepEqual(was, all(t, tc.db)) {
			t.Errorf("%s: a refused batch wrote something", name)
		}
	}
	if _, err := a.Integrate(ctx, []resolution.Decision{from(originA, 5, decision(c, mine, "x", 2))}); !errors.Is(err, resolution.ErrDiverged) {
		t.Errorf("own decision not held: %v does not wrap ErrDiverged", err)
	}
	// In order, in one batch, from nothing: fine. A duplicate in the batch
	// counts once.
	d2 := from(originC, 2, decision(c, theirs, "x", 2))
	if n := integrate(t, b, d2, from(originC, 3, decision(c, merged, "x", 3)), d2); n != 2 {
		t.Fatalf("added %d, want 2", n)
	}
	if got := len(all(t, b)); got != len(before)+2 {
		t.Fatalf("b holds %d decisions, want %d", got, len(before)+2)
	}
}

func TestReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "resolution")
	db, err := resolution.Open(dir, originA, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := conflict()
	record(t, db, decision(c, mine, "mine", 1))
	integrate(t, db, from(originB, 1, decision(c, theirs, "theirs", 2)), from(originB, 2, decision(c, theirs, "theirs", 3)))
	was, held := all(t, db), tickets(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Record(ctx, decision(c, mine, "mine", 1)); !errors.Is(err, resolution.ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	if _, err := db.Tickets(); !errors.Is(err, resolution.ErrClosed) {
		t.Fatalf("Tickets after Close: %v", err)
	}

	if _, err := resolution.Open(dir, originB, nil); err == nil || !strings.Contains(err.Error(), "copied from another replica") {
		t.Fatalf("opening with another replica's UUID: %v", err)
	}

	ro, err := resolution.Open(dir, originA, &resolution.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all(t, ro), was) || !maps.Equal(tickets(t, ro), held) {
		t.Fatal("a read-only reopen sees different decisions")
	}
	if _, err := ro.Record(ctx, decision(c, mine, "mine", 1)); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("Record on a read-only database: %v", err)
	}
	ro.Close()

	db = open(t, dir, originA)
	if !reflect.DeepEqual(all(t, db), was) || !maps.Equal(tickets(t, db), held) {
		t.Fatal("the reopened database holds different decisions")
	}
	if d := record(t, db, decision(c, mine, "mine", 4)); d.Seq != 2 {
		t.Fatalf("after reopening, the next decision is %d, want 2", d.Seq)
	}
	if _, votes, total, _, _ := db.Lookup(c.Fingerprint()); votes != 2 || total != 4 {
		t.Fatalf("lookup after reopen: %d of %d", votes, total)
	}
}

func TestOpenRefuses(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "resolution")
	if _, err := resolution.Open(missing, originA, &resolution.Options{ReadOnly: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only open of a missing database: %v", err)
	}
	if _, err := resolution.Open(missing, uuid.Nil, nil); err == nil {
		t.Fatal("Open accepted the nil UUID")
	}
	// A Pebble DB that holds something else.
	dir := filepath.Join(t.TempDir(), "other")
	p, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p.Set([]byte("Xkey"), nil, pebble.Sync)
	p.Close()
	if _, err := resolution.Open(dir, originA, nil); !errors.Is(err, resolution.ErrCorrupt) || !strings.Contains(err.Error(), "not a resolution database") {
		t.Fatalf("opening another Pebble DB: %v", err)
	}
}
