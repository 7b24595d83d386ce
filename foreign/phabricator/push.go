package phabricator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/replica"
)

// Outbound: a revision's title, summary, test plan and patch (a new diff),
// and new comments.
func (g *Gateway) Outbound(ch *changeset.Change) ([]string, bool) {
	switch ch.RecordType {
	case RevisionType:
		return foreign.Writable(ch, revisionOutbound)
	case CommentType:
		return foreign.Writable(ch, commentOutbound)
	}
	return nil, false
}

// Apply carries one outbound op to Phabricator.
func (g *Gateway) Apply(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	switch op.Ref.Type {
	case RevisionType:
		return g.applyRevision(ctx, st, op, rec)
	case CommentType:
		return g.applyComment(ctx, st, op, rec)
	}
	return foreign.Applied{}, fmt.Errorf("phabricator: records of type %q do not go to Phabricator", op.Ref.Type)
}

// definite says whether err is Conduit refusing a call (an error answer),
// so that it surely made nothing.
func definite(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// transient wraps an error that may pass (a lost answer, a server down):
// the op stays queued for the next push.
func transient(err error) error { return foreign.Later(err, definite(err)) }

// applied is what a write did: the record takes what the op wrote and
// what Phabricator assigns; the snapshot (foreign.Answered) leaves any
// other remote change since the last pull for the next pull to bring. A
// revision's snapshot then keeps its former updated, or the pull would
// take the revision as synced by its dateModified.
func applied(st *foreign.State, key string, props map[string]string, op *foreign.Op, echoes []string, isRevision bool) (foreign.Applied, error) {
	prev, err := st.Snapshot(key)
	if err != nil {
		return foreign.Applied{}, err
	}
	a := foreign.Answered(key, props, op, assigned, prev)
	if isRevision && !maps.Equal(a.Snapshot, props) {
		a.Snapshot["updated"] = prev["updated"]
	}
	a.Echoes = echoes
	return a, nil
}

// assigned are the properties Phabricator sets.
var assigned = append(slices.Clone(derived), "id", "author", "revision")

// editResult is differential.revision.edit's answer.
type editResult struct {
	Object struct {
		ID   int    `json:"id"`
		PHID string `json:"phid"`
	} `json:"object"`
	Transactions []struct {
		PHID string `json:"phid"`
	} `json:"transactions"`
}

func (r editResult) phids() []string {
	var out []string
	for _, x := range r.Transactions {
		out = append(out, x.PHID)
	}
	return out
}

// conduitType is the differential.revision.edit transaction type that
// writes a revision property (a status: its review action, actionFor).
var conduitType = map[string]string{"title": "title", "summary": "summary", "testplan": "testPlan", "patch": "update", "status": "status"}

// actionFor is the review action that takes a revision from status cur to
// want.
func actionFor(cur, want string) (string, error) {
	switch want {
	case "accepted":
		return "accept", nil
	case "needs-revision":
		return "reject", nil
	case "changes-planned":
		return "plan-changes", nil
	case "abandoned":
		return "abandon", nil
	case "published":
		return "close", nil
	case "needs-review":
		if cur == "abandoned" {
			return "reclaim", nil
		}
		return "request-review", nil
	}
	return "", fmt.Errorf("phabricator: no review action sets a revision's status to %q: use accepted, needs-revision (reject), needs-review, changes-planned, abandoned or published (close)", want)
}

func (g *Gateway) applyRevision(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	key, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if rec == nil {
		if known {
			return foreign.Applied{}, fmt.Errorf("phabricator: deleting a revision (%s) is not synced: abandon it in Phabricator", key)
		}
		return foreign.Applied{}, nil
	}
	if !known {
		rev, found, err := g.byURI(ctx, op.Ref, rec)
		if err != nil {
			return foreign.Applied{}, transient(err)
		}
		if found {
			return g.updateRevision(ctx, st, op, rec, rev)
		}
		if !op.Create {
			return foreign.Applied{}, fmt.Errorf("%w: %s is not on Phabricator as far as this replica knows: pull first", foreign.ErrLater, op.Ref)
		}
		// Made here: on Phabricator already if a try of ours lost its
		// answer, or another gateway replica pushed it first.
		rev, found, err = g.findRevision(ctx, op.Ref.Record, rec.Created)
		if err != nil {
			return foreign.Applied{}, transient(err)
		}
		if !found {
			return g.createRevision(ctx, st, op, rec)
		}
		return g.found(ctx, st, op, rev)
	}
	rev, found, err := g.revisionBy(ctx, "phids", key)
	if err != nil {
		return foreign.Applied{}, transient(err)
	}
	if !found {
		return foreign.Applied{}, fmt.Errorf("%w: revision %s is gone from Phabricator, or the token cannot see it", foreign.ErrDisabled, key)
	}
	return g.updateRevision(ctx, st, op, rec, rev)
}

// byURI finds the revision a record of a revision pulled by another
// gateway replica is: its uri names it, and its PHID's name or its marker
// confirms it.
func (g *Gateway) byURI(ctx context.Context, ref foreign.Ref, rec *replica.Record) (revision, bool, error) {
	id, ok := strings.CutPrefix(rec.Get("uri"), g.base+"D")
	if !ok {
		return revision{}, false, nil
	}
	rev, found, err := g.revisionBy(ctx, "ids", id)
	if err != nil || !found {
		return revision{}, false, err
	}
	_, m := markers.Split(rev.Fields.Summary)
	return rev, g.objectUUID(rev.PHID) == ref.Record || m == ref.Record, nil
}

// revisionBy reads one revision by a constraint ("ids" or "phids").
func (g *Gateway) revisionBy(ctx context.Context, constraint, value string) (revision, bool, error) {
	var v any = []string{value}
	if constraint == "ids" {
		n, err := strconv.Atoi(value)
		if err != nil {
			return revision{}, false, nil
		}
		v = []int{n}
	}
	var pg Page[revision]
	err := g.c.Call(ctx, "differential.revision.search", map[string]any{
		"constraints": map[string]any{constraint: v}, "attachments": jsonAttachments(),
	}, &pg)
	if err != nil || len(pg.Data) == 0 {
		return revision{}, false, err
	}
	return pg.Data[0], true, nil
}

func jsonAttachments() map[string]bool {
	return map[string]bool{"reviewers": true, "subscribers": true, "projects": true}
}

// findRevision looks for the revision whose summary carries record's
// marker, among those made since the record was (less an hour, for
// clocks): whoever made it (a try of ours, another gateway replica with
// its own token), it is the record's.
func (g *Gateway) findRevision(ctx context.Context, record uuid.UUID, made time.Time) (revision, bool, error) {
	var out revision
	found := false
	err := Search(ctx, g.c, "differential.revision.search", map[string]any{
		"constraints": map[string]any{"createdStart": made.Add(-time.Hour).Unix()},
		"attachments": jsonAttachments(),
	}, func(r revision) error {
		if _, m := markers.Split(r.Fields.Summary); m == record && !found {
			out, found = r, true
		}
		return nil
	})
	return out, found, err
}

// rawDiff uploads a patch as a new diff.
func (g *Gateway) rawDiff(ctx context.Context, patch string) (string, error) {
	var d struct {
		PHID string `json:"phid"`
	}
	if err := g.c.Call(ctx, "differential.createrawdiff", map[string]any{"diff": patch}, &d); err != nil {
		return "", transient(err)
	}
	return d.PHID, nil
}

func (g *Gateway) createRevision(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	if rec.Get("title") == "" {
		return foreign.Applied{}, errors.New("phabricator: a revision needs a title to go to Phabricator")
	}
	if strings.TrimSpace(rec.Get("patch")) == "" {
		return foreign.Applied{}, errors.New("phabricator: a revision needs a patch (its raw diff, in the patch property) to go to Phabricator")
	}
	d, err := g.rawDiff(ctx, rec.Get("patch"))
	if err != nil {
		return foreign.Applied{}, err
	}
	xs := []map[string]any{
		{"type": "update", "value": d},
		{"type": "title", "value": rec.Get("title")},
		{"type": "summary", "value": markers.Append(rec.Get("summary"), op.Ref.Record)},
	}
	if tp := rec.Get("testplan"); tp != "" {
		xs = append(xs, map[string]any{"type": "testPlan", "value": tp})
	}
	var res editResult
	if err := g.c.Call(ctx, "differential.revision.edit", map[string]any{"transactions": xs}, &res); err != nil {
		if definite(err) {
			return foreign.Applied{}, err
		}
		// The answer was lost, or the server failed after the write: look.
		rev, found, ferr := g.findRevision(ctx, op.Ref.Record, rec.Created)
		if ferr != nil || !found {
			return foreign.Applied{}, transient(err)
		}
		return g.found(ctx, st, op, rev)
	}
	rev, found, err := g.revisionBy(ctx, "phids", res.Object.PHID)
	if err != nil || !found {
		return foreign.Applied{}, transient(fmt.Errorf("reading back revision %s: %v", res.Object.PHID, err))
	}
	return g.settle(ctx, st, op, rev, res.phids())
}

// found settles a revision made for the record by a try whose answer was
// lost, or by another gateway replica: the transactions made with it (in
// the minute it was created, by its author), but for comments, are that
// making, and echoes.
func (g *Gateway) found(ctx context.Context, st *foreign.State, op *foreign.Op, rev revision) (foreign.Applied, error) {
	var echoes []string
	err := Search(ctx, g.c, "transaction.search", map[string]any{
		"objectIdentifier": rev.PHID, "constraints": map[string]any{"authorPHIDs": []string{rev.Fields.AuthorPHID}},
	}, func(x xact) error {
		if len(x.Comments) == 0 && x.DateCreated <= rev.Fields.DateCreated+60 {
			echoes = append(echoes, x.PHID)
		}
		return nil
	})
	if err != nil {
		return foreign.Applied{}, transient(err)
	}
	return g.settle(ctx, st, op, rev, echoes)
}

// mine lists the transactions the token's user made on a revision after
// transaction ID after (newest first): an earlier try's, whose answer was
// lost. It returns their PHIDs (but comments') and the kinds written.
func (g *Gateway) mine(ctx context.Context, revPHID string, after int) ([]string, map[string]bool, error) {
	me, err := g.whoami(ctx)
	if err != nil {
		return nil, nil, err
	}
	var phids []string
	kinds := map[string]bool{}
	err = Search(ctx, g.c, "transaction.search", map[string]any{
		"objectIdentifier": revPHID, "constraints": map[string]any{"authorPHIDs": []string{me.PHID}},
	}, func(x xact) error {
		if x.ID <= after {
			return errStop
		}
		if len(x.Comments) == 0 && x.Type != nil {
			phids = append(phids, x.PHID)
			kinds[*x.Type] = true
		}
		return nil
	})
	return phids, kinds, err
}

// newest is the ID of a revision's newest transaction.
func (g *Gateway) newest(ctx context.Context, revPHID string) (int, error) {
	var pg Page[xact]
	if err := g.c.Call(ctx, "transaction.search", map[string]any{"objectIdentifier": revPHID, "limit": 1}, &pg); err != nil || len(pg.Data) == 0 {
		return 0, err
	}
	return pg.Data[0].ID, nil
}

// currentPatch is the raw diff of the revision's current diff: the
// snapshot's when it is the diff the last pull fetched, else asked.
func (g *Gateway) currentPatch(ctx context.Context, rev revision, rs revState, prev map[string]string) (string, error) {
	if prev != nil && rs.Diff == rev.Fields.DiffPHID {
		return prev["patch"], nil
	}
	var pg Page[diff]
	if err := g.c.Call(ctx, "differential.diff.search", map[string]any{"constraints": map[string]any{"phids": []string{rev.Fields.DiffPHID}}}, &pg); err != nil || len(pg.Data) == 0 {
		return "", err
	}
	var raw string
	err := g.c.Call(ctx, "differential.getrawdiff", map[string]any{"diffID": pg.Data[0].ID}, &raw)
	return raw, err
}

// updateRevision writes the op's properties that differ from the
// revision's. Before writing it marks the op with the revision's newest
// transaction: a retry after a lost answer finds its earlier try's
// transactions past the mark (what they wrote is not written again, and
// they are echoes).
func (g *Gateway) updateRevision(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record, rev revision) (foreign.Applied, error) {
	prev, err := st.Snapshot(rev.PHID)
	if err != nil {
		return foreign.Applied{}, err
	}
	rs, err := loadRevState(st, rev.PHID)
	if err != nil {
		return foreign.Applied{}, err
	}
	var echoes []string
	done := map[string]bool{}
	if op.Mark != "" {
		after, _ := strconv.Atoi(op.Mark)
		if echoes, done, err = g.mine(ctx, rev.PHID, after); err != nil {
			return foreign.Applied{}, transient(err)
		}
	}
	summary, marker := markers.Split(rev.Fields.Summary)
	cur := map[string]string{"title": rev.Fields.Title, "testplan": rev.Fields.TestPlan, "summary": summary, "status": rev.Fields.Status.Value}
	var xs []map[string]any
	patch := false
	for _, p := range op.Props {
		typ := conduitType[p]
		if typ == "" || done[typ] {
			continue
		}
		if p == "patch" {
			now, err := g.currentPatch(ctx, rev, rs, prev)
			if err != nil {
				return foreign.Applied{}, transient(err)
			}
			if rec.Get("patch") == now {
				continue
			}
			if rs.Diff != "" && rs.Diff != rev.Fields.DiffPHID {
				return foreign.Applied{}, fmt.Errorf("%w: D%d has a new diff on Phabricator since the last pull: pull first, to settle it", foreign.ErrLater, rev.ID)
			}
			if strings.TrimSpace(rec.Get("patch")) == "" {
				return foreign.Applied{}, fmt.Errorf("phabricator: D%d: an empty patch cannot replace its diff", rev.ID)
			}
			patch = true
			continue
		}
		if rec.Get(p) == cur[p] {
			continue
		}
		if prev != nil && prev[p] != cur[p] {
			return foreign.Applied{}, fmt.Errorf("%w: Phabricator's %s of D%d changed since the last pull: pull first, to settle it", foreign.ErrLater, p, rev.ID)
		}
		if p == "status" {
			action, err := actionFor(cur[p], rec.Get(p))
			if err != nil {
				return foreign.Applied{}, err
			}
			if !done[action] {
				xs = append(xs, map[string]any{"type": action, "value": true})
			}
			continue
		}
		v := rec.Get(p)
		if p == "summary" && marker != uuid.Nil {
			v = markers.Append(v, marker) // a revision a push made keeps its marker
		}
		xs = append(xs, map[string]any{"type": typ, "value": v})
	}
	written := *op
	if done["update"] || patch {
		written.Props = append(slices.Clone(op.Props), "diff", "commit")
	}
	if len(xs) == 0 && !patch {
		return g.settle(ctx, st, &written, rev, echoes)
	}
	if op.Mark == "" {
		n, err := g.newest(ctx, rev.PHID)
		if err != nil {
			return foreign.Applied{}, transient(err)
		}
		if err := st.SetMark(op, strconv.Itoa(n)); err != nil {
			return foreign.Applied{}, err
		}
	}
	if patch {
		d, err := g.rawDiff(ctx, rec.Get("patch"))
		if err != nil {
			return foreign.Applied{}, err
		}
		xs = append([]map[string]any{{"type": "update", "value": d}}, xs...)
	}
	var res editResult
	if err := g.c.Call(ctx, "differential.revision.edit", map[string]any{"objectIdentifier": rev.PHID, "transactions": xs}, &res); err != nil {
		return foreign.Applied{}, transient(err)
	}
	now, found, err := g.revisionBy(ctx, "phids", rev.PHID)
	if err != nil || !found {
		return foreign.Applied{}, transient(fmt.Errorf("reading back D%d: %v", rev.ID, err))
	}
	return g.settle(ctx, st, &written, now, append(echoes, res.phids()...))
}

// settle makes the Applied of a revision as Phabricator now has it: its
// properties, named as a pull names them (the diff's from the last pull,
// or fetched when it changed), and the users and projects it names.
func (g *Gateway) settle(ctx context.Context, st *foreign.State, op *foreign.Op, rev revision, echoes []string) (foreign.Applied, error) {
	p, err := g.translator(st)
	if err != nil {
		return foreign.Applied{}, err
	}
	t := &pending{rev: rev}
	if t.state, err = loadRevState(st, rev.PHID); err != nil {
		return foreign.Applied{}, err
	}
	if err := p.diffs(ctx, []*pending{t}); err != nil {
		return foreign.Applied{}, transient(err)
	}
	if err := p.people(ctx, []*pending{t}); err != nil {
		return foreign.Applied{}, transient(err)
	}
	snap, err := st.Snapshot(rev.PHID)
	if err != nil {
		return foreign.Applied{}, err
	}
	props := p.revisionProps(rev, snap)
	if t.diff != nil {
		t.setDiff(props)
	}
	a, err := applied(st, rev.PHID, props, op, echoes, true)
	if err != nil {
		return foreign.Applied{}, err
	}
	a.Related = *p.related
	return a, nil
}

// translator is a puller that emits nothing: a push's way to name things
// as a pull would.
func (g *Gateway) translator(st *foreign.State) (*puller, error) {
	snaps, err := foreign.NewSnapshots(st, g.url, g.objectUUID, 0)
	if err != nil {
		return nil, err
	}
	return &puller{Snapshots: snaps, g: g, st: st, emit: func(foreign.Change) error { return nil },
		done: map[string]int64{}, names: map[string]string{}, related: &[]foreign.Related{}}, nil
}

func (g *Gateway) applyComment(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	key, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if rec == nil {
		if known {
			return foreign.Applied{}, fmt.Errorf("phabricator: deleting a comment (%s) is not synced: Conduit cannot; remove it in Phabricator's web UI", key)
		}
		return foreign.Applied{}, nil
	}
	if known || !op.Create {
		return foreign.Applied{}, fmt.Errorf("phabricator: editing a comment (%s) is not synced: Conduit cannot; edit it in Phabricator's web UI", op.Ref.Record)
	}
	ru, err := uuid.Parse(rec.Get("revision"))
	if err != nil {
		return foreign.Applied{}, fmt.Errorf("phabricator: comment %s has no valid revision property (%q)", op.Ref.Record, rec.Get("revision"))
	}
	rref := foreign.Ref{Type: RevisionType, Record: ru}
	rkey, rknown, err := st.Remote(rref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if !rknown {
		// A revision another gateway replica pulled: its uri says which.
		if v := st.View(); v != nil {
			if rrec, err := v.Record(rref); err == nil && rrec != nil {
				rev, found, err := g.byURI(ctx, rref, rrec)
				if err != nil {
					return foreign.Applied{}, transient(err)
				}
				rkey, rknown = rev.PHID, found
			}
		}
	}
	if !rknown {
		return foreign.Applied{}, fmt.Errorf("%w: its revision %s is not on Phabricator yet", foreign.ErrLater, ru)
	}
	// A try of ours whose answer was lost, or another gateway replica,
	// may have posted it: the marker tells.
	x, found, err := g.findComment(ctx, rkey, op.Ref.Record)
	if err != nil {
		return foreign.Applied{}, transient(err)
	}
	if !found {
		var res editResult
		err := g.c.Call(ctx, "differential.revision.edit", map[string]any{"objectIdentifier": rkey, "transactions": []map[string]any{
			{"type": "comment", "value": markers.Append(rec.Get("body"), op.Ref.Record)},
		}}, &res)
		if err != nil && definite(err) {
			return foreign.Applied{}, err
		}
		if x, found, err = g.findComment(ctx, rkey, op.Ref.Record); err != nil || !found {
			return foreign.Applied{}, transient(fmt.Errorf("the comment posted to %s is not to be found: %v", rkey, err))
		}
	}
	p, err := g.translator(st)
	if err != nil {
		return foreign.Applied{}, err
	}
	if err := p.people(ctx, []*pending{{xacts: []xact{x}}}); err != nil {
		return foreign.Applied{}, transient(err)
	}
	props, _ := p.commentProps(x, ru.String())
	opc := *op
	opc.Create = true
	a, err := applied(st, x.PHID, props, &opc, nil, false)
	if err != nil {
		return foreign.Applied{}, err
	}
	a.Related = *p.related
	return a, nil
}

// findComment looks among a revision's transactions for the comment
// carrying record's marker (whoever posted it).
func (g *Gateway) findComment(ctx context.Context, revPHID string, record uuid.UUID) (xact, bool, error) {
	var out xact
	found := false
	err := Search(ctx, g.c, "transaction.search", map[string]any{"objectIdentifier": revPHID}, func(x xact) error {
		if len(x.Comments) > 0 && !found {
			if _, m := markers.Split(x.Comments[0].Content.Raw); m == record {
				out, found = x, true
			}
		}
		return nil
	})
	return out, found, err
}
