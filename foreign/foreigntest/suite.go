// Package foreigntest is the conformance suite every gateway must pass
// (DESIGN.md, "Foreign replicas"): pull, edit, push, pull without echo; a
// remote edit against a local one; a push whose answer is lost, or whose
// process stops, without a duplicate; a relay through two foreign replicas
// (seed 004's scenario); two gateway replicas on one remote; and an
// incremental pull with nothing new in one request.
//
// A gateway's tests give it a Kit, which makes fresh, isolated remotes.
package foreigntest

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// Remote is one remote for the suite, isolated from every other test's
// (for RT, a queue of its own).
type Remote interface {
	// Gateway makes a gateway for the remote whose requests go through
	// rt (below the gateway's retries).
	Gateway(t testing.TB, rt http.RoundTripper) foreign.Gateway
	// Create makes an item on the remote, as a person there would, and
	// returns its remote key (the one the gateway maps to a record).
	Create(t testing.TB, title string) string
	// SetTitle changes an item's title on the remote, as a person would.
	SetTitle(t testing.TB, key, title string)
	// Title reads an item's title on the remote.
	Title(t testing.TB, key string) string
	// Count is how many items the remote holds.
	Count(t testing.TB) int
}

// Kit describes the gateway under test.
type Kit struct {
	NewRemote func(t testing.TB) Remote
	Type      string // the record type of the remote's items ("ticket")
	Title     string // the property that holds an item's title ("subject")
	// Writes says whether a request writes to the remote (POST, say):
	// the lost-answer tests drop the answer of the first such one.
	Writes func(r *http.Request) bool
	// NoopRequests is how many requests a pull with nothing new makes
	// (default 1; GitHub asks its two lists, conditionally).
	NoopRequests int64
	// Props are other properties an item made here needs to go to the
	// remote (Phabricator's revisions: a patch).
	Props map[string]string
}

// item is the properties of an item made here with the given title.
func (k Kit) item(title string) map[string]string {
	props := map[string]string{k.Title: title}
	for n, v := range k.Props {
		props[n] = v
	}
	return props
}

// Run runs the suite.
func Run(t *testing.T, k Kit) {
	t.Run("PullEditPushPull", k.pullEditPushPull)
	t.Run("Conflict", k.conflict)
	t.Run("LostAnswer", k.lostAnswer)
	t.Run("CrashBeforeAnswer", k.crashBeforeAnswer)
	t.Run("Seed004Relay", k.relay)
	t.Run("TwoGateways", k.twoGateways)
	t.Run("TwoGatewaysRemoteMovesOn", k.twoGatewaysMovesOn)
	t.Run("NoopPull", k.noopPull)
}

// Counter counts the requests that pass through it.
type Counter struct {
	Next http.RoundTripper
	n    atomic.Int64
}

func (c *Counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return next(c.Next).RoundTrip(r)
}

// N is the number of requests so far.
func (c *Counter) N() int64 { return c.n.Load() }

func next(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// errLost is the error a request whose answer was dropped fails with.
var errLost = errors.New("foreigntest: the connection broke before the answer came")

// dropper sends the first write on and then drops its answer, as a network
// that dies at the wrong moment does. With cancel, it also stops the
// whole push, as a process killed there would.
type dropper struct {
	writes  func(*http.Request) bool
	cancel  func()
	mu      sync.Mutex
	dropped bool
}

func (d *dropper) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil || d.dropped || !d.writes(r) {
		return resp, err
	}
	d.dropped = true
	resp.Body.Close()
	if d.cancel != nil {
		d.cancel()
	}
	return nil, errLost
}

// Gateway is a gateway replica with its foreign replica of one remote.
type Gateway struct {
	Dir   string
	Local *merge.Local
	F     *foreign.Foreign
}

// Open opens (creating) the gateway replica in dir with the foreign
// replica gw reaches.
func Open(t testing.TB, dir string, gw foreign.Gateway) *Gateway {
	t.Helper()
	return OpenIn(t, dir, uuid.Nil, gw)
}

// OpenIn is Open, creating the replica (if it is new) in database db
// (uuid.Nil: a new database).
func OpenIn(t testing.TB, dir string, db uuid.UUID, gw foreign.Gateway) *Gateway {
	t.Helper()
	ctx := context.Background()
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		r, err := replica.Init(dir, db, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
	}
	local, err := merge.Open(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := foreign.Open(local, gw, nil)
	if err != nil {
		local.Close()
		t.Fatal(err)
	}
	g := &Gateway{Dir: dir, Local: local, F: f}
	t.Cleanup(g.Close)
	return g
}

// Also opens a second foreign replica on the same gateway replica.
func (g *Gateway) Also(t testing.TB, gw foreign.Gateway) *foreign.Foreign {
	t.Helper()
	f, err := foreign.Open(g.Local, gw, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Close closes it (twice is fine).
func (g *Gateway) Close() {
	if g.F != nil {
		g.F.Close()
		g.Local.Close()
		g.F = nil
	}
}

// Pull pulls from f (default g.F) and fails the test on error.
func Pull(t testing.TB, f *foreign.Foreign, o *merge.Options) merge.Report {
	t.Helper()
	rep, err := f.Pull(context.Background(), o)
	if err != nil {
		t.Fatalf("pull from %s: %v", f.Gateway().URL(), err)
	}
	return rep
}

// Push pushes to f and fails the test on error or failed ops.
func Push(t testing.TB, f *foreign.Foreign) foreign.PushReport {
	t.Helper()
	rep, err := f.Push(context.Background())
	if err != nil {
		t.Fatalf("push to %s: %v", f.Gateway().URL(), err)
	}
	if rep.Errored > 0 || rep.Waiting > 0 {
		t.Fatalf("push to %s: %d ops failed (%v), %d wait (%v)", f.Gateway().URL(), rep.Errored, rep.Errors, rep.Waiting, rep.Wait)
	}
	return rep
}

// RecordOf is the record a remote item maps to, in f's state handle.
func RecordOf(t testing.TB, f *foreign.Foreign, key string) foreign.Ref {
	t.Helper()
	ref, ok, err := f.State().Record(key)
	if err != nil || !ok {
		t.Fatalf("no record for remote %s (%v)", key, err)
	}
	return ref
}

// Get reads a live record.
func (g *Gateway) Get(t testing.TB, ref foreign.Ref) *replica.Record {
	t.Helper()
	rec, err := g.Local.R.Get(ref.Type, ref.Record)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	return rec
}

// Set updates a record here.
func (g *Gateway) Set(t testing.TB, ref foreign.Ref, props map[string]string) {
	t.Helper()
	if _, err := g.Local.R.Commit(context.Background(), replica.Edit{Type: ref.Type, Record: ref.Record, Op: replica.Update, Set: props}); err != nil {
		t.Fatal(err)
	}
}

// Create creates a record here.
func (g *Gateway) Create(t testing.TB, typ string, props map[string]string) foreign.Ref {
	t.Helper()
	cs, err := g.Local.R.Commit(context.Background(), replica.Edit{Type: typ, Op: replica.Create, Set: props})
	if err != nil {
		t.Fatal(err)
	}
	return foreign.Ref{Type: typ, Record: cs.Changes[0].Record}
}

// Count is the number of live records of typ.
func (g *Gateway) Count(t testing.TB, typ string) int {
	t.Helper()
	n := 0
	if err := g.Local.R.List(typ, nil, func(*replica.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Verify checks every invariant of the gateway replica.
func (g *Gateway) Verify(t testing.TB) {
	t.Helper()
	rep, err := g.Local.R.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify %s: %v", g.Dir, rep.Problems)
	}
}

// Sync merges a into b and b into a (native replicas, on disk).
func Sync(t testing.TB, a, b *Gateway) {
	t.Helper()
	ctx := context.Background()
	if _, err := merge.Pull(ctx, a.Local, b.Local, nil); err != nil {
		t.Fatalf("pull %s -> %s: %v", a.Dir, b.Dir, err)
	}
	if _, err := merge.Pull(ctx, b.Local, a.Local, nil); err != nil {
		t.Fatalf("pull %s -> %s: %v", b.Dir, a.Dir, err)
	}
}

func (k Kit) open(t *testing.T, r Remote, name string) *Gateway {
	return Open(t, filepath.Join(t.TempDir(), name), r.Gateway(t, nil))
}

// pull, edit, push, pull: the second pull brings nothing back.
func (k Kit) pullEditPushPull(t *testing.T) {
	r := k.NewRemote(t)
	key := r.Create(t, "printer on fire")
	g := k.open(t, r, "bob")
	if rep := Pull(t, g.F, nil); rep.Integrated == 0 {
		t.Fatalf("the first pull integrated nothing")
	}
	ref := RecordOf(t, g.F, key)
	if got := g.Get(t, ref).Get(k.Title); got != "printer on fire" {
		t.Fatalf("title %q after the pull", got)
	}
	g.Set(t, ref, map[string]string{k.Title: "printer fixed"})
	if rep := Push(t, g.F); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	if got := r.Title(t, key); got != "printer fixed" {
		t.Fatalf("the remote has title %q after the push", got)
	}
	latest := g.Local.R.LatestSeq()
	if rep := Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("the pull after the push integrated %d changesets: an echo", rep.Integrated)
	}
	if g.Local.R.LatestSeq() != latest {
		t.Fatal("the log grew on a pull of our own changes")
	}
	// Nothing goes out twice.
	if rep := Push(t, g.F); rep.Completed != 0 {
		t.Fatalf("a second push did %d ops", rep.Completed)
	}
	g.Verify(t)
}

// A remote edit against a local edit is a conflict, settled by the
// resolver, recorded in the resolution database, and the remote ends with
// the settled value.
func (k Kit) conflict(t *testing.T) {
	r := k.NewRemote(t)
	key := r.Create(t, "base")
	g := k.open(t, r, "bob")
	Pull(t, g.F, nil)
	ref := RecordOf(t, g.F, key)
	r.SetTitle(t, key, "theirs")
	g.Set(t, ref, map[string]string{k.Title: "mine"})

	// The push notices the remote changed since the last pull, and waits.
	rep, err := g.F.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Waiting != 1 || r.Title(t, key) != "theirs" {
		t.Fatalf("a push over a remote edit it has not pulled: %+v; remote title %q", rep, r.Title(t, key))
	}
	// Without a resolver the pull stops at the conflict.
	_, err = g.F.Pull(context.Background(), nil)
	var unresolved *merge.UnresolvedError
	if !errors.As(err, &unresolved) {
		t.Fatalf("pull of a conflicting edit: %v, want an unresolved conflict", err)
	}
	prep := Pull(t, g.F, &merge.Options{Resolver: merge.Mine})
	if prep.Conflicts != 1 {
		t.Fatalf("pull settled %d conflicts, want 1", prep.Conflicts)
	}
	if got := g.Get(t, ref).Get(k.Title); got != "mine" {
		t.Fatalf("title %q after settling for mine", got)
	}
	Push(t, g.F)
	if got := r.Title(t, key); got != "mine" {
		t.Fatalf("the remote has %q after pushing the settled value", got)
	}
	if rep := Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("pull after settling: %+v", rep)
	}
	g.Verify(t)
}

// The answer to the create is lost: the push tries again and finds the
// item instead of making a second one.
func (k Kit) lostAnswer(t *testing.T) {
	r := k.NewRemote(t)
	d := &dropper{writes: k.Writes}
	g := Open(t, filepath.Join(t.TempDir(), "bob"), r.Gateway(t, d))
	ref := g.Create(t, k.Type, k.item("made offline"))
	rep, err := g.F.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errored != 0 {
		t.Fatalf("push with a lost answer: %+v", rep)
	}
	if rep.Waiting > 0 {
		Push(t, g.F)
	}
	if n := r.Count(t); n != 1 {
		t.Fatalf("the remote holds %d items after a push whose answer was lost, want 1", n)
	}
	if _, ok, _ := g.F.State().Remote(ref); !ok {
		t.Fatal("the record is not mapped to the remote item")
	}
	if rep := Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("pull after the push: %+v", rep)
	}
	g.Verify(t)
}

// The process stops right after the create reached the remote: the op was
// processing; on the next start it is retried and finds the item.
func (k Kit) crashBeforeAnswer(t *testing.T) {
	r := k.NewRemote(t)
	dir := filepath.Join(t.TempDir(), "bob")
	ctx, cancel := context.WithCancel(context.Background())
	d := &dropper{writes: k.Writes, cancel: cancel}
	g := Open(t, dir, r.Gateway(t, d))
	ref := g.Create(t, k.Type, k.item("made offline"))
	if _, err := g.F.Push(ctx); err == nil {
		t.Fatal("the push went on after its process was stopped")
	}
	g.Close()
	g = Open(t, dir, r.Gateway(t, nil))
	Push(t, g.F)
	if n := r.Count(t); n != 1 {
		t.Fatalf("the remote holds %d items after the retry, want 1", n)
	}
	if _, ok, _ := g.F.State().Remote(ref); !ok {
		t.Fatal("the record is not mapped to the remote item")
	}
	if rep := Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("pull after the retried push integrated %d changesets: an echo", rep.Integrated)
	}
	g.Verify(t)
}

// Seed 004: Bob pulls an item from foreign A and pushes it to foreign B,
// and B receives it (B's push position is B's own, not Bob's merge
// tickets). The reverse relay adds nothing, and nothing loops.
func (k Kit) relay(t *testing.T) {
	ra, rb := k.NewRemote(t), k.NewRemote(t)
	key := ra.Create(t, "from A")
	bob := Open(t, filepath.Join(t.TempDir(), "bob"), ra.Gateway(t, nil))
	fb := bob.Also(t, rb.Gateway(t, nil))
	Pull(t, bob.F, nil)
	if rep := Push(t, fb); rep.Completed != 1 {
		t.Fatalf("push to B: %+v", rep)
	}
	if n := rb.Count(t); n != 1 {
		t.Fatalf("B holds %d items after the relay, want 1", n)
	}
	ref := RecordOf(t, bob.F, key)
	bkey, ok, err := fb.State().Remote(ref)
	if err != nil || !ok {
		t.Fatalf("B's state handle does not map the relayed record (%v)", err)
	}
	if got := rb.Title(t, bkey); got != "from A" {
		t.Fatalf("B's copy has title %q", got)
	}
	// Back: nothing new from B, nothing to send to A.
	for range 2 {
		if rep := Pull(t, fb, nil); rep.Integrated != 0 {
			t.Fatalf("pull from B integrated %d: the relay echoed", rep.Integrated)
		}
		Push(t, bob.F)
		if rep := Pull(t, bob.F, nil); rep.Integrated != 0 {
			t.Fatalf("pull from A integrated %d: the relay looped", rep.Integrated)
		}
		Push(t, fb)
	}
	if na, nb := ra.Count(t), rb.Count(t); na != 1 || nb != 1 {
		t.Fatalf("A holds %d and B %d items after the round trips, want 1 and 1", na, nb)
	}
	// An edit on B reaches A.
	rb.SetTitle(t, bkey, "edited on B")
	Pull(t, fb, nil)
	Push(t, bob.F)
	if got := ra.Title(t, key); got != "edited on B" {
		t.Fatalf("A has %q after relaying B's edit", got)
	}
	bob.Verify(t)
}

// Two gateway replicas on one remote, syncing with each other too, make
// no duplicates either way.
func (k Kit) twoGateways(t *testing.T) {
	r := k.NewRemote(t)
	g1 := k.open(t, r, "one")
	g2 := OpenIn(t, filepath.Join(t.TempDir(), "two"), g1.Local.R.DatabaseUUID(), r.Gateway(t, nil))
	key := r.Create(t, "made remotely")
	ref := g1.Create(t, k.Type, k.item("made on one"))
	Pull(t, g1.F, nil)
	Push(t, g1.F)
	Sync(t, g1, g2)
	Pull(t, g2.F, &merge.Options{})
	Push(t, g2.F)
	Sync(t, g1, g2)
	if n := r.Count(t); n != 2 {
		t.Fatalf("the remote holds %d items, want 2", n)
	}
	for _, g := range []*Gateway{g1, g2} {
		if n := g.Count(t, k.Type); n != 2 {
			t.Fatalf("%s holds %d %s records, want 2", g.Dir, n, k.Type)
		}
		if got := g.Get(t, ref).Get(k.Title); got != "made on one" {
			t.Fatalf("%s: title %q", g.Dir, got)
		}
		g.Verify(t)
	}
	if RecordOf(t, g1.F, key) != RecordOf(t, g2.F, key) {
		t.Fatal("the two gateways gave the remote item different records")
	}
	// An edit on two goes out once and comes back to one as an edit.
	g2.Set(t, ref, map[string]string{k.Title: "edited on two"})
	Push(t, g2.F)
	Pull(t, g1.F, nil)
	Sync(t, g1, g2)
	if n := r.Count(t); n != 2 {
		t.Fatalf("the remote holds %d items after an edit, want 2", n)
	}
	if got := g1.Get(t, ref).Get(k.Title); got != "edited on two" {
		t.Fatalf("one has %q", got)
	}
}

// Two gateway replicas: one pulls a remote edit, hands it to the other
// natively, and the remote moves on before the other pulls. That pull
// applies cleanly: the record held the remote's state, not a local edit.
func (k Kit) twoGatewaysMovesOn(t *testing.T) {
	r := k.NewRemote(t)
	key := r.Create(t, "v1")
	g1 := k.open(t, r, "one")
	g2 := OpenIn(t, filepath.Join(t.TempDir(), "two"), g1.Local.R.DatabaseUUID(), r.Gateway(t, nil))
	Pull(t, g1.F, nil)
	Pull(t, g2.F, nil)
	Sync(t, g1, g2)
	r.SetTitle(t, key, "v2")
	Pull(t, g2.F, nil)
	Sync(t, g1, g2)
	r.SetTitle(t, key, "v3")
	rep := Pull(t, g1.F, nil) // no resolver: a conflict would fail it
	if rep.Conflicts != 0 {
		t.Fatalf("pull settled %d conflicts, want none", rep.Conflicts)
	}
	ref := RecordOf(t, g1.F, key)
	if got := g1.Get(t, ref).Get(k.Title); got != "v3" {
		t.Fatalf("one has %q, want v3", got)
	}
	Sync(t, g1, g2)
	Pull(t, g2.F, nil)
	if got := g2.Get(t, ref).Get(k.Title); got != "v3" {
		t.Fatalf("two has %q, want v3", got)
	}
	g1.Verify(t)
	g2.Verify(t)
}

// A pull with nothing new is one request (Kit.NoopRequests).
func (k Kit) noopPull(t *testing.T) {
	r := k.NewRemote(t)
	r.Create(t, "one")
	c := &Counter{}
	g := Open(t, filepath.Join(t.TempDir(), "bob"), r.Gateway(t, c))
	Pull(t, g.F, nil)
	before := c.N()
	if rep := Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("noop pull: %+v", rep)
	}
	want := k.NoopRequests
	if want == 0 {
		want = 1
	}
	if n := c.N() - before; n != want {
		t.Fatalf("a pull with nothing new made %d requests, want %d", n, want)
	}
}
