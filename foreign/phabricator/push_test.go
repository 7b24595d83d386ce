package phabricator

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
)

// A remote change made between the last pull and a push (the revision
// accepted) is not swallowed by what the push writes: the next pull
// brings it.
func TestPushKeepsRemoteChanges(t *testing.T) {
	r, rev, g, ref := pulledRevision(t)
	r.clock.Advance(time.Second)
	if _, err := r.srv.SetStatus(rev.PHID, r.alice.PHID, conduitfake.StatusAccepted); err != nil {
		t.Fatal(err)
	}
	g.Set(t, ref, map[string]string{"title": "retitled here"})
	foreigntest.Push(t, g.F)
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated == 0 {
		t.Fatal("the pull after the push brought nothing of the remote's change")
	}
	rec := g.Get(t, ref)
	if rec.Get("status") != conduitfake.StatusAccepted || rec.Get("title") != "retitled here" {
		t.Fatalf("record after the pull: status %q title %q", rec.Get("status"), rec.Get("title"))
	}
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("a second pull integrated %d", rep.Integrated)
	}
	g.Verify(t)
}

// A patch edited here goes out as a new diff; the record then names that
// diff.
func TestPushPatch(t *testing.T) {
	r, rev, g, ref := pulledRevision(t)
	g.Set(t, ref, map[string]string{"patch": testPatch})
	if rep := foreigntest.Push(t, g.F); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	now, _ := r.srv.Revision(rev.PHID)
	d, _ := r.srv.Diff(now.DiffPHID)
	if now.DiffPHID == rev.DiffPHID || d.Raw != testPatch {
		t.Fatalf("Phabricator's diff after the push: %+v", d)
	}
	foreigntest.Pull(t, g.F, nil)
	if got := g.Get(t, ref).Get("diff"); got != strconv.Itoa(d.ID) {
		t.Fatalf("the record names diff %s, Phabricator %d", got, d.ID)
	}
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("a second pull integrated %d", rep.Integrated)
	}
	g.Verify(t)
}

// dropEdit sends the first differential.revision.edit on and loses its
// answer.
type dropEdit struct{ n atomic.Int32 }

func (d *dropEdit) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/differential.revision.edit") && d.n.Add(1) == 1 {
		resp.Body.Close()
		return nil, errors.New("the connection broke before the answer came")
	}
	return resp, err
}

// The answer to an edit (a new patch and a title) is lost: the retry finds
// the edit made, writes nothing twice, and its transactions stay echoes.
func TestPushEditLostAnswer(t *testing.T) {
	r := newFakeRemote(t)
	rev := r.revision(t, "r")
	g := foreigntest.Open(t, filepath.Join(t.TempDir(), "g"), r.gateway(t, &dropEdit{}, Config{}))
	foreigntest.Pull(t, g.F, nil)
	ref := foreigntest.RecordOf(t, g.F, rev.PHID)
	g.Set(t, ref, map[string]string{"patch": testPatch, "title": "t2"})
	rep, err := g.F.Push(t.Context())
	if err != nil || rep.Waiting != 1 {
		t.Fatalf("push with a lost answer: %+v %v", rep, err)
	}
	foreigntest.Push(t, g.F)
	kinds := map[string]int{}
	for _, x := range r.srv.Transactions(rev.PHID) {
		kinds[x.Type]++
	}
	if kinds["update"] != 2 || kinds["title"] != 1 {
		t.Fatalf("transactions on Phabricator: %v, want 2 updates (the first diff's, ours) and 1 title", kinds)
	}
	before := g.Count(t, TransactionType)
	foreigntest.Pull(t, g.F, nil)
	if after := g.Count(t, TransactionType); after != before {
		t.Fatalf("the pull made %d transaction records of our own edit", after-before)
	}
	g.Verify(t)
}

// A gateway replica that never pulled the revision (its record came by
// native sync) pushes a patch edit: it goes out, and stays in the record.
func TestPushPatchFromAnotherReplica(t *testing.T) {
	r := newFakeRemote(t)
	rev := r.revision(t, "r")
	g1, _ := open(t, r, Config{})
	g2 := foreigntest.OpenIn(t, filepath.Join(t.TempDir(), "two"), g1.Local.R.DatabaseUUID(), r.gateway(t, nil, Config{}))
	foreigntest.Pull(t, g1.F, nil)
	foreigntest.Sync(t, g1, g2)
	ref := foreigntest.RecordOf(t, g1.F, rev.PHID)
	g2.Set(t, ref, map[string]string{"patch": testPatch})
	if rep := foreigntest.Push(t, g2.F); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	now, _ := r.srv.Revision(rev.PHID)
	if d, _ := r.srv.Diff(now.DiffPHID); d.Raw != testPatch {
		t.Fatalf("Phabricator's diff: %q", d.Raw)
	}
	if got := g2.Get(t, ref).Get("patch"); got != testPatch {
		t.Fatalf("the record's patch was undone: %q", got)
	}
}

// Revisions made here, pushed in parallel with no pull before (the
// users they name become records as the ops end): no op fails, no
// duplicate, nothing comes back.
func TestPushParallelCreates(t *testing.T) {
	r := newFakeRemote(t)
	g, _ := open(t, r, Config{})
	for i := range 8 {
		g.Create(t, RevisionType, map[string]string{"title": fmt.Sprint("t", i), "patch": testPatch})
	}
	if rep := foreigntest.Push(t, g.F); rep.Completed != 8 {
		t.Fatalf("push: %+v", rep)
	}
	if n := r.Count(t); n != 8 {
		t.Fatalf("Phabricator holds %d revisions, want 8", n)
	}
	wantCounts(t, g, map[string]int{UserType: 1, RevisionType: 8})
	if rep := foreigntest.Pull(t, g.F, nil); rep.Integrated != 0 {
		t.Fatalf("the pull after the push integrated %d", rep.Integrated)
	}
	g.Verify(t)
}

// A status set here goes out as the review action that makes it: the
// bot accepts; a status no action makes is refused with the ones that
// are.
func TestPushReviewAction(t *testing.T) {
	r, rev, g, ref := pulledRevision(t)
	g.Set(t, ref, map[string]string{"status": conduitfake.StatusAccepted})
	foreigntest.Push(t, g.F)
	now, _ := r.srv.Revision(rev.PHID)
	if now.Status != conduitfake.StatusAccepted || now.Reviewers[0].Status != "accepted" {
		t.Fatalf("Phabricator after the push: %+v", now)
	}
	foreigntest.Pull(t, g.F, nil)
	if got := g.Get(t, ref).Get("reviewers"); got != "bot:accepted" {
		t.Fatalf("reviewers %q", got)
	}
	g.Set(t, ref, map[string]string{"status": "draft"})
	rep, err := g.F.Push(t.Context())
	if err != nil || rep.Errored != 1 || !strings.Contains(fmt.Sprint(rep.Errors), "no review action sets") {
		t.Fatalf("push of a status no action makes: %+v %v", rep, err)
	}
}
