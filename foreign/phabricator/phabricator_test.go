package phabricator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
)

func open(t *testing.T, r *fakeRemote, cfg Config) (*foreigntest.Gateway, *Gateway) {
	t.Helper()
	gw := r.gateway(t, nil, cfg)
	return foreigntest.Open(t, filepath.Join(t.TempDir(), "g"), gw), gw
}

// pulledRevision is a fake with one revision ("r") that a gateway
// replica pulled, and its record.
func pulledRevision(t *testing.T) (*fakeRemote, conduitfake.Revision, *foreigntest.Gateway, foreign.Ref) {
	t.Helper()
	r := newFakeRemote(t)
	rev := r.revision(t, "r")
	g, _ := open(t, r, Config{})
	foreigntest.Pull(t, g.F, nil)
	return r, rev, g, foreigntest.RecordOf(t, g.F, rev.PHID)
}

// counts is the number of live records per type.
func counts(t *testing.T, g *foreigntest.Gateway) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, typ := range []string{RevisionType, CommentType, TransactionType, UserType, ProjectType, RepositoryType} {
		out[typ] = g.Count(t, typ)
	}
	return out
}

func wantCounts(t *testing.T, g *foreigntest.Gateway, want map[string]int) {
	t.Helper()
	got := counts(t, g)
	for typ, n := range want {
		if got[typ] != n {
			t.Fatalf("%d %s records, want %d (all: %v)", got[typ], typ, n, got)
		}
	}
}

// A revision matched by two queries (the bot reviews it, and so does the
// project #backend) is one record; the project becomes one record however
// many revisions name it.
func TestOverlappingQueries(t *testing.T) {
	r := newFakeRemote(t)
	backend := r.srv.AddProject("Backend")
	repo := r.srv.AddRepository("prophet", "PRO")
	both, err := r.srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: r.alice.PHID, Title: "both", RepositoryPHID: repo.PHID,
		Reviewers: []string{r.bot.PHID, backend.PHID}, Projects: []string{backend.PHID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: r.alice.PHID, Title: "group only",
		Reviewers: []string{backend.PHID}, Projects: []string{backend.PHID}}); err != nil {
		t.Fatal(err)
	}
	r.revision(t, "bot only")
	// Two queries at once: the bot, and the project.
	g, _ := open(t, r, Config{Address: r.address() + "?responsible=bot&responsible=#" + backend.Slug})
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 3, ProjectType: 1, UserType: 2, RepositoryType: 1})
	if n := r.srv.RequestsFor("transaction.search"); n != 3 {
		t.Fatalf("%d transaction searches for 3 revisions, one matched twice", n)
	}
	rec := g.Get(t, foreigntest.RecordOf(t, g.F, both.PHID))
	if rec.Get("reviewers") != "#"+backend.Slug+", bot" || rec.Get("projects") != "#"+backend.Slug || rec.Get("author") != "alice" || rec.Get("repository") != "prophet" {
		t.Fatalf("revision record: %v", rec.Props)
	}
	// A change to the revision both match is one update.
	r.SetTitle(t, both.PHID, "both, retitled")
	rep := foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 3, ProjectType: 1})
	if got := g.Get(t, foreigntest.RecordOf(t, g.F, both.PHID)).Get("title"); got != "both, retitled" {
		t.Fatalf("title %q", got)
	}
	if rep.Integrated != 2 { // the revision, and its title transaction
		t.Fatalf("pull of one change integrated %d changesets, want 2", rep.Integrated)
	}
	g.Verify(t)
}

// A revision that reaches the search late, with a dateModified older than
// the newest the last refresh saw, is met by the next refresh, which is
// backdated; one whose refresh is backdated by a second only misses it.
// The revisions a backdated window reads again are not synced twice.
func TestBackdatedRefresh(t *testing.T) {
	r := newFakeRemote(t)
	r.revision(t, "early")
	g, _ := open(t, r, Config{Window: time.Minute})
	narrow := foreigntest.Open(t, filepath.Join(t.TempDir(), "narrow"), r.gateway(t, nil, Config{Window: time.Second}))
	foreigntest.Pull(t, g.F, nil)
	foreigntest.Pull(t, narrow.F, nil)
	newer := r.revision(t, "newer")
	foreigntest.Pull(t, g.F, nil)
	foreigntest.Pull(t, narrow.F, nil)
	// A revision written in a transaction that committed late: it shows
	// up now, dated 20 s before "newer".
	late := r.revision(t, "late")
	if err := r.srv.SetDateModified(late.PHID, newer.DateModified-20); err != nil {
		t.Fatal(err)
	}
	foreigntest.Pull(t, g.F, nil)
	foreigntest.Pull(t, narrow.F, nil)
	foreigntest.RecordOf(t, g.F, late.PHID)
	if _, ok, _ := narrow.F.State().Record(late.PHID); ok {
		t.Fatal("a refresh backdated by 1 s met the late revision: the test shows nothing")
	}
	wantCounts(t, g, map[string]int{RevisionType: 3})
	for range 3 {
		if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
			t.Fatalf("a refresh with nothing new integrated %d changesets", rep.Integrated)
		}
	}
	// Each revision's create, update and reviewers transactions, once.
	want := 0
	for _, rev := range r.srv.Revisions() {
		want += len(r.srv.Transactions(rev.PHID))
	}
	wantCounts(t, g, map[string]int{RevisionType: 3, TransactionType: want})
	g.Verify(t)
}

// Grow: a revision last modified before the first window (30 days) comes
// with a pull that asks for 60; the window then starts there.
func TestGrow(t *testing.T) {
	r := newFakeRemote(t)
	old := r.revision(t, "old")
	if err := r.srv.SetDateModified(old.PHID, r.clock.Now().Add(-40*24*time.Hour).Unix()); err != nil {
		t.Fatal(err)
	}
	r.revision(t, "recent")
	dir := filepath.Join(t.TempDir(), "g")
	g := foreigntest.Open(t, dir, r.gateway(t, nil, Config{}))
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 1})
	g.Close()

	g = foreigntest.Open(t, dir, r.gateway(t, nil, Config{Since: 60 * 24 * time.Hour}))
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 2})
	foreigntest.RecordOf(t, g.F, old.PHID)
	qs := queriesOf(t, g.F)
	if len(qs) != 1 || qs[0].First > r.clock.Now().Add(-59*24*time.Hour).Unix() {
		t.Fatalf("queries after growing: %+v", qs)
	}
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("a pull after growing integrated %d", rep.Integrated)
	}
	g.Verify(t)
}

func queriesOf(t *testing.T, f *foreign.Foreign) []query {
	t.Helper()
	v, err := f.State().Cursor(cQueries)
	if err != nil {
		t.Fatal(err)
	}
	var qs []query
	if err := json.Unmarshal([]byte(v), &qs); err != nil {
		t.Fatal(err)
	}
	return qs
}

// An edited comment updates its record; it is not a second comment.
func TestEditedComment(t *testing.T) {
	r := newFakeRemote(t)
	rev := r.revision(t, "r")
	x, err := r.srv.AddComment(rev.PHID, r.alice.PHID, "first words")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := open(t, r, Config{})
	foreigntest.Pull(t, g.F, nil)
	ref := foreigntest.RecordOf(t, g.F, x.PHID)
	if got := g.Get(t, ref).Get("body"); got != "first words" {
		t.Fatalf("comment body %q", got)
	}
	r.clock.Advance(time.Minute)
	if _, err := r.srv.EditComment(x.PHID, "better words"); err != nil {
		t.Fatal(err)
	}
	// Phorge does not move the revision's dateModified for an edited
	// comment: the revision's next change brings it.
	if err := r.srv.Touch(rev.PHID); err != nil {
		t.Fatal(err)
	}
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{CommentType: 1})
	rec := g.Get(t, ref)
	if rec.Get("body") != "better words" {
		t.Fatalf("comment body %q after the edit", rec.Get("body"))
	}
	if rec.Get("created") == rec.Get("updated") {
		t.Fatalf("the edited comment's updated (%s) is its created", rec.Get("updated"))
	}
	n := 0
	if err := g.Local.R.History(CommentType, ref.Record, func(*changeset.Changeset) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("the comment's history has %d changesets, want 2 (added, edited)", n)
	}
	g.Verify(t)
}

// 150 revisions modified in one second span a page boundary: all come,
// once; one more in that same second, after the pull, comes with the next.
func TestSameTimestampPageBoundary(t *testing.T) {
	r := newFakeRemote(t)
	r.clock.Advance(time.Second)
	var last conduitfake.Revision
	for i := range 150 {
		rev, err := r.srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: r.alice.PHID, Title: fmt.Sprint("r", i), Reviewers: []string{r.bot.PHID}})
		if err != nil {
			t.Fatal(err)
		}
		last = rev
	}
	g, _ := open(t, r, Config{})
	foreigntest.Pull(t, g.F, nil)
	if n := r.srv.RequestsFor("differential.revision.search"); n < 2 {
		t.Fatalf("%d searches: the page boundary was not crossed", n)
	}
	wantCounts(t, g, map[string]int{RevisionType: 150})
	more := r.revision(t, "one more")
	if err := r.srv.SetDateModified(more.PHID, last.DateModified); err != nil {
		t.Fatal(err)
	}
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 151})
	foreigntest.RecordOf(t, g.F, more.PHID)
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("a pull with nothing new integrated %d", rep.Integrated)
	}
	g.Verify(t)
}

// A new diff is fetched (commit message and patch) once; transactions are
// read once per changed revision, and not at all for an unchanged one.
func TestNewDiffAndTransactions(t *testing.T) {
	r, rev, g, ref := pulledRevision(t)
	first := g.Get(t, ref)
	if first.Get("patch") == "" || first.Get("diff") == "" {
		t.Fatalf("the revision record has no diff: %v", first.Props)
	}
	raw, xs := r.srv.RequestsFor("differential.getrawdiff"), r.srv.RequestsFor("transaction.search")
	r.clock.Advance(time.Second)
	if _, err := r.srv.UpdateDiffPatch(rev.PHID, r.alice.PHID, "second version", testPatch); err != nil {
		t.Fatal(err)
	}
	foreigntest.Pull(t, g.F, nil)
	now := g.Get(t, ref)
	if now.Get("patch") != testPatch || now.Get("commit") != "second version" || now.Get("diff") == first.Get("diff") {
		t.Fatalf("after a new diff: diff %s commit %q patch %q", now.Get("diff"), now.Get("commit"), now.Get("patch"))
	}
	if d := r.srv.RequestsFor("differential.getrawdiff") - raw; d != 1 {
		t.Fatalf("%d raw diffs fetched for one new diff", d)
	}
	if d := r.srv.RequestsFor("transaction.search") - xs; d != 1 {
		t.Fatalf("%d transaction searches for one changed revision", d)
	}
	raw, xs = r.srv.RequestsFor("differential.getrawdiff"), r.srv.RequestsFor("transaction.search")
	r.SetTitle(t, rev.PHID, "retitled")
	foreigntest.Pull(t, g.F, nil)
	if d := r.srv.RequestsFor("differential.getrawdiff") - raw; d != 0 {
		t.Fatalf("a title change fetched the diff again (%d)", d)
	}
	if d := r.srv.RequestsFor("transaction.search") - xs; d != 1 {
		t.Fatalf("%d transaction searches for a title change", d)
	}
	g.Verify(t)
}

// A comment made here goes out through differential.revision.edit, and
// the pull after does not bring it back as a second comment.
func TestPushComment(t *testing.T) {
	r, rev, g, revRef := pulledRevision(t)
	c := g.Create(t, CommentType, map[string]string{"revision": revRef.Record.String(), "body": "LGTM"})
	if rep := foreigntest.Push(t, g.F); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	var posted []conduitfake.Transaction
	for _, x := range r.srv.Transactions(rev.PHID) {
		if x.Comment != nil {
			posted = append(posted, x)
		}
	}
	if len(posted) != 1 || !strings.HasPrefix(posted[0].Comment.Raw, "LGTM\n\n[prophet-record: "+c.Record.String()+"]") || posted[0].AuthorPHID != r.bot.PHID {
		t.Fatalf("comments on Phabricator after the push: %+v", posted)
	}
	foreigntest.Pull(t, g.F, nil)
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{CommentType: 1})
	if got := foreigntest.RecordOf(t, g.F, posted[0].PHID); got != c {
		t.Fatalf("the posted comment maps to %s, not the record it came from (%s)", got, c)
	}
	if got := g.Get(t, c).Get("body"); got != "LGTM" {
		t.Fatalf("body %q (the marker shows)", got)
	}
	// Editing it is not something Conduit can do: a clear error.
	g.Set(t, c, map[string]string{"body": "LGTM!"})
	rep, err := g.F.Push(context.Background())
	if err != nil || rep.Errored != 1 || !strings.Contains(fmt.Sprint(rep.Errors), "edit it in Phabricator's web UI") {
		t.Fatalf("push of an edited comment: %+v %v", rep, err)
	}
	g.Verify(t)
}

// A refused token, an old server, a server down, a missing token, a bad
// address: errors that say what to do.
func TestErrors(t *testing.T) {
	r := newFakeRemote(t)
	r.revision(t, "r")
	pullErr := func(cfg Config) error {
		gw := r.gateway(t, nil, cfg)
		g := foreigntest.Open(t, filepath.Join(t.TempDir(), "g"), gw)
		_, err := g.F.Pull(context.Background(), nil)
		return err
	}
	if err := pullErr(Config{Token: "api-wrongwrongwrongwrongwrongwron"}); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "PROPHET_PHABRICATOR_TOKEN") {
		t.Fatalf("bad token: %v", err)
	}
	r.srv.DisableMethod("differential.revision.search")
	if err := pullErr(Config{}); err == nil || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("old server: %v", err)
	}
	r.srv.EnableMethod("differential.revision.search")
	down := newFakeRemote(t)
	down.srv.Close()
	if err := pullErr(Config{Address: down.address()}); err == nil || !strings.Contains(err.Error(), "cannot reach Phabricator") {
		t.Fatalf("server down: %v", err)
	}
	if _, err := New(Config{Address: r.address()}); err == nil || !strings.Contains(err.Error(), "PROPHET_PHABRICATOR_TOKEN") {
		t.Fatalf("no token: %v", err)
	}
	for _, addr := range []string{"phab:ftp://x", "phab:https://u:p@host", "phab:https://host?queue=x", "github:x/y"} {
		if _, err := New(Config{Address: addr, Token: "t"}); err == nil {
			t.Fatalf("address %q accepted", addr)
		}
	}
	// A token in the address is not shown in the error.
	if _, err := New(Config{Address: "phab:https://u:secret@host", Token: "t"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error shows credentials: %v", err)
	}
}

// A change in the very second a pull read the revision (dateModified has
// one-second resolution) is not mistaken for what the pull saw.
func TestChangeInTheSecondOfThePull(t *testing.T) {
	r := newFakeRemote(t)
	rev := r.revision(t, "before")
	// No ticker: the server's clock stands still through the pull.
	gw, err := New(Config{Address: r.address(), Token: r.bot.Token, Clock: r.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	g := foreigntest.Open(t, filepath.Join(t.TempDir(), "g"), gw)
	foreigntest.Pull(t, g.F, nil)
	if _, err := r.srv.SetTitle(rev.PHID, r.alice.PHID, "after"); err != nil {
		t.Fatal(err)
	}
	if now, _ := r.srv.Revision(rev.PHID); now.DateModified != rev.DateModified {
		t.Fatal("the clock moved: the test shows nothing")
	}
	foreigntest.Pull(t, g.F, nil)
	if got := g.Get(t, foreigntest.RecordOf(t, g.F, rev.PHID)).Get("title"); got != "after" {
		t.Fatalf("title %q: a change in the second of the last read was missed", got)
	}
}

// Two gateway replicas that both meet a new project, and sync with each
// other, hold one record of it (its UUID is its PHID's): the seed's
// folder-creation race, settled by identity.
func TestTwoGatewaysOneProject(t *testing.T) {
	r := newFakeRemote(t)
	ops := r.srv.AddProject("Ops")
	for _, title := range []string{"a", "b"} {
		if _, err := r.srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: r.alice.PHID, Title: title,
			Reviewers: []string{r.bot.PHID}, Projects: []string{ops.PHID}}); err != nil {
			t.Fatal(err)
		}
	}
	g1, _ := open(t, r, Config{})
	g2 := foreigntest.OpenIn(t, filepath.Join(t.TempDir(), "two"), g1.Local.R.DatabaseUUID(), r.Gateway(t, nil))
	foreigntest.Pull(t, g1.F, nil)
	foreigntest.Pull(t, g2.F, nil)
	foreigntest.Sync(t, g1, g2)
	for _, g := range []*foreigntest.Gateway{g1, g2} {
		wantCounts(t, g, map[string]int{ProjectType: 1, RevisionType: 2, UserType: 2})
		g.Verify(t)
	}
	if foreigntest.RecordOf(t, g1.F, ops.PHID) != foreigntest.RecordOf(t, g2.F, ops.PHID) {
		t.Fatal("the two gateways made different records of one project")
	}
}

func TestParseAddress(t *testing.T) {
	for _, c := range []struct{ in, canonical, base, queries string }{
		{"phab:https://Phab.Example.com/", "phab:https://phab.example.com", "https://phab.example.com/", "[]"},
		{"phab:https://phab.example.com/api/", "phab:https://phab.example.com", "https://phab.example.com/", "[]"},
		{"phabricator:http://h:8080/phab?responsible=alice,bob&responsible=#ops", "phab:http://h:8080/phab", "http://h:8080/phab/", "[[alice bob] [#ops]]"},
		{"phab:https://h?responsible=%23ops", "phab:https://h", "https://h/", "[[#ops]]"},
	} {
		canonical, base, qs, err := ParseAddress(c.in)
		if err != nil || canonical != c.canonical || base != c.base || fmt.Sprint(qs) != c.queries {
			t.Errorf("ParseAddress(%q) = %q %q %v %v", c.in, canonical, base, qs, err)
		}
	}
}

// A diff too big to carry in a changeset is left on Phabricator: the
// record says so, and the sync goes on.
func TestHugePatchOmitted(t *testing.T) {
	r := newFakeRemote(t)
	rev := r.revision(t, "huge")
	big := testPatch + strings.Repeat("+x\n", MaxPatch/3+1)
	if _, err := r.srv.UpdateDiffPatch(rev.PHID, r.alice.PHID, "vendored everything", big); err != nil {
		t.Fatal(err)
	}
	g, _ := open(t, r, Config{})
	foreigntest.Pull(t, g.F, nil)
	rec := g.Get(t, foreigntest.RecordOf(t, g.F, rev.PHID))
	if rec.Get("patch") != "" || !strings.Contains(rec.Get("patch-omitted"), fmt.Sprint(len(big), " bytes")) || rec.Get("commit") != "vendored everything" {
		t.Fatalf("record of a huge diff: patch %d bytes, patch-omitted %q, commit %q", len(rec.Get("patch")), rec.Get("patch-omitted"), rec.Get("commit"))
	}
	g.Verify(t)
}

// A lagging search (a revision shows up only 20 s after its change) costs
// nothing but time: the refresh that meets it syncs it, once.
func TestLaggingSearch(t *testing.T) {
	r := newFakeRemote(t)
	r.revision(t, "early")
	g, _ := open(t, r, Config{})
	foreigntest.Pull(t, g.F, nil)
	r.srv.Lag(20 * time.Second)
	late := r.revision(t, "late")
	foreigntest.Pull(t, g.F, nil)
	if _, ok, _ := g.F.State().Record(late.PHID); ok {
		t.Fatal("the lagging search showed the revision at once: the test shows nothing")
	}
	r.clock.Advance(30 * time.Second)
	foreigntest.Pull(t, g.F, nil)
	foreigntest.RecordOf(t, g.F, late.PHID)
	r.srv.Lag(0)
	foreigntest.Pull(t, g.F, nil)
	wantCounts(t, g, map[string]int{RevisionType: 2})
	g.Verify(t)
}
