package rt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/replica"
)

// Apply carries one outbound op to RT.
func (g *Gateway) Apply(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	switch op.Ref.Type {
	case TicketType:
		return g.applyTicket(ctx, st, op, rec)
	case CommentType:
		return g.applyComment(ctx, st, op, rec)
	}
	return foreign.Applied{}, fmt.Errorf("rt: records of type %q do not go to RT", op.Ref.Type)
}

// rtFields is the REST2 body that sets props of rec.
func rtFields(rec *replica.Record, props []string) map[string]any {
	body := map[string]any{}
	for _, p := range props {
		v := rec.Get(p)
		switch p {
		case "subject":
			body["Subject"] = v
		case "status":
			if v != "" {
				body["Status"] = v
			}
		case "queue":
			if v != "" {
				body["Queue"] = v
			}
		case "owner":
			if v == "" {
				v = "Nobody"
			}
			body["Owner"] = v
		case "priority":
			if v == "" {
				v = "0"
			}
			body["Priority"] = v
		case "requestors":
			body["Requestor"] = splitSet(v)
		}
	}
	return body
}

func (g *Gateway) applyTicket(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	remote, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if known {
		return g.updateTicket(ctx, st, op, rec, remote)
	}
	if rec == nil {
		return foreign.Applied{}, nil // made and deleted before it ever reached RT
	}
	// Not in RT as far as this foreign replica knows: a ticket for it is
	// made here, unless one is there already, made by a try of ours whose
	// answer was lost, or by another gateway replica.
	opc := *op
	opc.Create = true
	op = &opc
	id, found, err := g.findTicket(ctx, op.Ref.Record, rec, op.Attempts > 1)
	if err != nil {
		return foreign.Applied{}, err
	}
	if !found {
		return g.createTicket(ctx, op, rec)
	}
	// Bring it up to date, then take it as made now, with every
	// transaction of ours on it as an echo.
	if _, err := g.updateTicket(ctx, st, op, rec, remoteTicket(id)); err != nil {
		return foreign.Applied{}, err
	}
	return g.settle(ctx, op, rec, id, 0)
}

// findTicket looks for a ticket made for record id: in the queue, created
// since the record was (less ten minutes for clocks), with the record's
// marker in its first message. A first try asks only for tickets with the
// record's subject, which is one cheap search when there is none; a retry
// looks at every ticket of the window.
func (g *Gateway) findTicket(ctx context.Context, id uuid.UUID, rec *replica.Record, retry bool) (string, bool, error) {
	q := fmt.Sprintf("Created >= '%s'", rec.Created.Add(-10*time.Minute).UTC().Format("2006-01-02 15:04:05"))
	if g.queue != "" {
		q += fmt.Sprintf(" AND Queue = '%s'", sqlQuote(g.queue))
	}
	if !retry {
		q += fmt.Sprintf(" AND Subject = '%s'", sqlQuote(rec.Get("subject")))
	}
	for pageN := 1; ; pageN++ {
		var pg page[struct {
			ID flexID `json:"id"`
		}]
		qv := url.Values{"query": {q}, "per_page": {strconv.Itoa(pageSize)}, "page": {strconv.Itoa(pageN)}, "orderby": {"id"}, "order": {"DESC"}}
		if _, err := g.c.do(ctx, "GET", "/tickets", qv, nil, nil, &pg); err != nil {
			return "", false, err
		}
		for _, t := range pg.Items {
			var creates page[txn]
			hq := url.Values{"query": {fmt.Sprintf("ObjectType = 'RT::Ticket' AND ObjectId = %s AND Type = 'Create'", t.ID)}, "fields": {txnFields}}
			if _, err := g.c.do(ctx, "GET", "/transactions", hq, nil, nil, &creates); err != nil {
				return "", false, err
			}
			contents, err := g.contents(ctx, creates.Items)
			if err != nil {
				return "", false, err
			}
			for _, h := range creates.Items {
				if _, m := splitMarker(contents[string(h.ID)]); m == id {
					return string(t.ID), true, nil
				}
			}
		}
		if pg.Page >= pg.Pages || len(pg.Items) == 0 {
			return "", false, nil
		}
	}
}

func sqlQuote(s string) string { return strings.ReplaceAll(s, "'", `\'`) }

// definite says whether err is RT refusing a write, so that it surely made
// nothing: an answer in the 4xx range. A lost answer, or a 5xx (a proxy's,
// or a scrip failing after the write), may hide a write that was made.
func definite(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status < 500
}

func (g *Gateway) createTicket(ctx context.Context, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	body := rtFields(rec, g.writable())
	if _, ok := body["Queue"]; !ok {
		body["Queue"] = g.defaultQueue()
	}
	body["Content"] = marker(op.Ref.Record)
	body["ContentType"] = "text/plain"
	var created struct {
		ID flexID `json:"id"`
	}
	_, err := g.c.do(ctx, "POST", "/ticket", nil, nil, body, &created)
	if err != nil {
		if definite(err) {
			return foreign.Applied{}, err
		}
		// The ticket may exist: look for it.
		id, found, ferr := g.findTicket(ctx, op.Ref.Record, rec, true)
		if ferr != nil || !found {
			return foreign.Applied{}, fmt.Errorf("%w (and no ticket for it is in RT: it is tried again at the next push)", err)
		}
		created.ID = flexID(id)
	}
	return g.settle(ctx, op, rec, string(created.ID), 0)
}

func (g *Gateway) defaultQueue() string {
	if g.queue != "" {
		return g.queue
	}
	return "General"
}

// ours says whether RT user name is the gateway's (RT compares names
// regardless of case).
func (g *Gateway) ours(name string) bool { return strings.EqualFold(name, g.user) }

// tracked says whether a transaction is one the feed translates.
func tracked(t *txn) bool {
	switch {
	case field(t) != "", t.Type == "Create", t.Type == "Comment", t.Type == "Correspond":
		return true
	case t.Field == "Requestor" && (t.Type == "AddWatcher" || t.Type == "DelWatcher"):
		return true
	}
	return false
}

// wrote says whether our transaction h is one op's write made: for a new
// ticket, any; for an update, those of the properties it wrote. What RT's
// scrips did besides, as our user, is pulled like anyone's change.
func (g *Gateway) wrote(op *foreign.Op, h *txn) bool {
	if op.Create {
		return true
	}
	if p := field(h); p != "" {
		return slices.Contains(op.Props, p)
	}
	return h.Field == "Requestor" && slices.Contains(op.Props, "requestors")
}

// settle reads the ticket after our write: the transactions of ours after
// `after` are the echoes to skip, and its values are what the record
// takes.
func (g *Gateway) settle(ctx context.Context, op *foreign.Op, rec *replica.Record, id string, after uint64) (foreign.Applied, error) {
	t, _, err := g.getTicket(ctx, id)
	if err != nil {
		return foreign.Applied{}, err
	}
	snap, err := g.snapshotOf(ctx, t)
	if err != nil {
		return foreign.Applied{}, err
	}
	hist, err := g.history(ctx, id)
	if err != nil {
		return foreign.Applied{}, err
	}
	a := foreign.Applied{Remote: remoteTicket(id), Report: map[string]string{}}
	var lastTracked *txn
	for i := range hist {
		h := &hist[i]
		if tracked(h) {
			lastTracked = h
		}
		if h.ID.uint() <= after || !g.ours(h.Creator.ID.str()) || !tracked(h) || !g.wrote(op, h) {
			continue
		}
		a.Echoes = append(a.Echoes, remoteTxn(string(h.ID)))
	}
	// updated as the feed computes it: the time of the last transaction
	// it translates.
	delete(snap, "updated")
	if lastTracked != nil {
		if ts, err := rtTime(lastTracked.Created); err == nil {
			snap["updated"] = ts.Format(time.RFC3339)
		}
	}
	// The record takes what RT now has for what the op wrote (and what RT
	// derives; everything, for a new ticket): not the other properties,
	// which a newer local change may be on its way to set.
	for k, v := range snap {
		newQueue := k == "queue" && op.Create && rec.Get("queue") == "" // the queue it went in
		if (op.Create && slices.Contains(g.writable(), k)) || newQueue || slices.Contains(op.Props, k) || slices.Contains(derived, k) {
			a.Report[k] = v
		}
	}
	return a, nil
}

func etagSeq(etag string) (uint64, error) {
	n, err := strconv.ParseUint(strings.Trim(etag, `"W/`), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rt: RT sent ETag %q, not the transaction ID RT 5 sends", etag)
	}
	return n, nil
}

func (g *Gateway) updateTicket(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record, remote string) (foreign.Applied, error) {
	id := strings.TrimPrefix(remote, "ticket/")
	prev, err := st.Snapshot(remote)
	if err != nil {
		return foreign.Applied{}, err
	}
	props := op.Props
	if rec == nil { // deleted here: RT keeps tickets, with status deleted
		props = []string{"status"}
		rec = &replica.Record{Props: []replica.Prop{{Name: "status", Value: "deleted"}}}
	}
	for attempt := 0; ; attempt++ {
		t, etag, err := g.getTicket(ctx, id)
		if err != nil {
			return foreign.Applied{}, err
		}
		cur, err := g.snapshotOf(ctx, t)
		if err != nil {
			return foreign.Applied{}, err
		}
		if g.queue != "" && cur["queue"] != g.queue {
			return foreign.Applied{}, fmt.Errorf("%w: RT ticket %s is in queue %q now, and this foreign replica syncs %q", foreign.ErrDisabled, id, cur["queue"], g.queue)
		}
		var change []string
		for _, p := range props {
			want := rec.Get(p)
			if p == "owner" && want == "" {
				want = "Nobody"
			}
			if p == "priority" && want == "" {
				want = "0"
			}
			if cur[p] == want {
				continue
			}
			if prev != nil && prev[p] != cur[p] {
				return foreign.Applied{}, fmt.Errorf("%w: RT's %s of ticket %s changed since the last pull (%q, here %q): pull first, to settle it", foreign.ErrLater, p, id, cur[p], want)
			}
			change = append(change, p)
		}
		if len(change) == 0 {
			if op.Mark != "" {
				// An earlier try of this op wrote, and its answer was
				// lost: what it made after the mark are the echoes.
				after, err := etagSeq(op.Mark)
				if err != nil {
					return foreign.Applied{}, err
				}
				return g.settle(ctx, op, rec, id, after)
			}
			return foreign.Applied{Remote: remote}, nil // RT has it already (another gateway wrote it)
		}
		if _, err := etagSeq(etag); err != nil {
			return foreign.Applied{}, err
		}
		// Before the write, durably: where RT's history stood.
		if err := st.SetMark(op, etag); err != nil {
			return foreign.Applied{}, err
		}
		_, err = g.c.do(ctx, "PUT", "/ticket/"+url.PathEscape(id), nil, map[string]string{"If-Match": etag}, rtFields(rec, change), nil)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusPreconditionFailed && attempt < 3 {
			continue // changed under us (or by a retried PUT of ours): look again
		}
		if err != nil {
			return foreign.Applied{}, err
		}
		after, _ := etagSeq(op.Mark)
		return g.settle(ctx, op, rec, id, after)
	}
}

func (g *Gateway) applyComment(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	_, known, err := st.Remote(op.Ref)
	if err != nil {
		return foreign.Applied{}, err
	}
	if !op.Create {
		return foreign.Applied{}, fmt.Errorf("rt: RT cannot edit or delete a comment (comment %s); the change stays here only", op.Ref.Record)
	}
	if known || rec == nil {
		return foreign.Applied{}, nil // in RT already, or gone before it got there
	}
	tu, err := uuid.Parse(rec.Get("ticket"))
	if err != nil {
		return foreign.Applied{}, fmt.Errorf("rt: comment %s has no valid ticket property (%q)", op.Ref.Record, rec.Get("ticket"))
	}
	tremote, known, err := st.Remote(foreign.Ref{Type: TicketType, Record: tu})
	if err != nil {
		return foreign.Applied{}, err
	}
	if !known {
		return foreign.Applied{}, fmt.Errorf("%w: its ticket %s is not in RT yet", foreign.ErrLater, tu)
	}
	id := strings.TrimPrefix(tremote, "ticket/")
	// Made already, by a try of ours whose answer was lost, or by another
	// gateway replica? The marker tells.
	txnID, found, err := g.findComment(ctx, id, op.Ref.Record, 0)
	if err != nil {
		return foreign.Applied{}, err
	}
	if found {
		return g.commentApplied(ctx, txnID)
	}
	_, etag, err := g.getTicket(ctx, id)
	if err != nil {
		return foreign.Applied{}, err
	}
	before, err := etagSeq(etag)
	if err != nil {
		return foreign.Applied{}, err
	}
	kind := "comment"
	if rec.Get("kind") == "correspond" {
		kind = "correspond"
	}
	body := map[string]any{"Content": rec.Get("body") + "\n\n" + marker(op.Ref.Record), "ContentType": "text/plain"}
	_, perr := g.c.do(ctx, "POST", "/ticket/"+url.PathEscape(id)+"/"+kind, nil, nil, body, nil)
	if perr != nil && definite(perr) {
		return foreign.Applied{}, perr
	}
	// Success, or an answer that may hide one: the history tells.
	txnID, found, err = g.findComment(ctx, id, op.Ref.Record, before)
	switch {
	case err != nil:
		return foreign.Applied{}, err
	case !found && perr != nil:
		return foreign.Applied{}, fmt.Errorf("%w (and the comment is not in RT: it is tried again at the next push)", perr)
	case !found:
		return foreign.Applied{}, fmt.Errorf("rt: RT took comment %s on ticket %s but its history does not show it", op.Ref.Record, id)
	}
	return g.commentApplied(ctx, txnID)
}

// findComment looks in ticket id's history after transaction `after` for
// the comment that carries record's marker (whoever posted it: another
// gateway replica may use another RT user).
func (g *Gateway) findComment(ctx context.Context, id string, record uuid.UUID, after uint64) (string, bool, error) {
	hist, err := g.history(ctx, id)
	if err != nil {
		return "", false, err
	}
	var mine []txn
	for _, h := range hist {
		if (h.Type == "Comment" || h.Type == "Correspond") && h.ID.uint() > after {
			mine = append(mine, h)
		}
	}
	if len(mine) == 0 {
		return "", false, nil
	}
	contents, err := g.contents(ctx, mine)
	if err != nil {
		return "", false, err
	}
	for _, h := range mine {
		if _, m := splitMarker(contents[string(h.ID)]); m == record {
			return string(h.ID), true, nil
		}
	}
	return "", false, nil
}

// commentApplied: the comment's transaction is the only echo (what RT's
// scrips did besides, such as opening the ticket, is pulled as usual).
func (g *Gateway) commentApplied(ctx context.Context, txnID string) (foreign.Applied, error) {
	var t txn
	if _, err := g.c.do(ctx, "GET", "/transaction/"+url.PathEscape(txnID), nil, nil, nil, &t); err != nil {
		return foreign.Applied{}, err
	}
	a := foreign.Applied{Remote: remoteTxn(txnID), Echoes: []string{remoteTxn(txnID)}, Report: map[string]string{"author": t.Creator.ID.str()}}
	if ts, err := rtTime(t.Created); err == nil {
		a.Report["created"] = ts.Format(time.RFC3339)
	}
	return a, nil
}
