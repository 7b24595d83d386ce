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
	if !known {
		if rec == nil {
			return foreign.Applied{}, nil // made and deleted before it ever reached RT
		}
		var id string
		found := false
		if op.Attempts > 1 { // a retry: the first try may have made it
			if id, found, err = g.findTicket(ctx, op.Ref.Record, rec.Get("subject"), op.Created); err != nil {
				return foreign.Applied{}, err
			}
		}
		if !found {
			return g.createTicket(ctx, st, op, rec)
		}
		// The first try made it (its answer was lost, or the process
		// died): bring it up to date, then take it as made now, with
		// every transaction of ours on it as an echo.
		if _, err := g.updateTicket(ctx, st, op, rec, remoteTicket(id)); err != nil {
			return foreign.Applied{}, err
		}
		return g.settle(ctx, op, rec, id, 0)
	}
	return g.updateTicket(ctx, st, op, rec, remote)
}

// findTicket looks for the ticket a push of record id made: ours, with the
// subject, created since the op was (less a minute for clocks), and the
// record's marker in its first message.
func (g *Gateway) findTicket(ctx context.Context, id uuid.UUID, subject string, since time.Time) (string, bool, error) {
	q := fmt.Sprintf("Creator = '%s' AND Created >= '%s'", sqlQuote(g.user), since.Add(-time.Minute).UTC().Format("2006-01-02 15:04:05"))
	if g.queue != "" {
		q += fmt.Sprintf(" AND Queue = '%s'", sqlQuote(g.queue))
	}
	var pg page[struct {
		ID flexID `json:"id"`
	}]
	if _, err := g.c.do(ctx, "GET", "/tickets", url.Values{"query": {q}, "per_page": {"100"}, "orderby": {"id"}, "order": {"DESC"}}, nil, nil, &pg); err != nil {
		return "", false, err
	}
	for _, t := range pg.Items {
		hist, err := g.history(ctx, string(t.ID))
		if err != nil {
			return "", false, err
		}
		for _, h := range hist {
			if h.Type != "Create" {
				continue
			}
			contents, err := g.contents(ctx, []txn{h})
			if err != nil {
				return "", false, err
			}
			if _, m := splitMarker(contents[string(h.ID)]); m == id {
				return string(t.ID), true, nil
			}
		}
	}
	return "", false, nil
}

func sqlQuote(s string) string { return strings.ReplaceAll(s, "'", `\'`) }

func (g *Gateway) createTicket(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
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
		var e *Error
		if errors.As(err, &e) {
			return foreign.Applied{}, err // RT answered: nothing was made
		}
		// The answer was lost: the ticket may exist. Look for it once.
		id, found, ferr := g.findTicket(ctx, op.Ref.Record, rec.Get("subject"), op.Created)
		if ferr != nil || !found {
			return foreign.Applied{}, fmt.Errorf("%w (and the ticket is not in RT: it is tried again at the next push)", err)
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
	var lastOurs *txn
	for i := range hist {
		h := &hist[i]
		if h.ID.uint() <= after || h.Creator.ID.str() != g.user {
			continue
		}
		a.Echoes = append(a.Echoes, remoteTxn(string(h.ID)))
		lastOurs = h
	}
	if lastOurs != nil {
		if ts, err := rtTime(lastOurs.Created); err == nil {
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
	if op.Create {
		a.Snapshot = snap
	}
	return a, nil
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
		before, _ := strconv.ParseUint(strings.Trim(etag, `"`), 10, 64)
		if len(change) == 0 {
			return foreign.Applied{Remote: remote}, nil // RT has it already (a retry, or another gateway)
		}
		_, err = g.c.do(ctx, "PUT", "/ticket/"+url.PathEscape(id), nil, map[string]string{"If-Match": etag}, rtFields(rec, change), nil)
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusPreconditionFailed && attempt < 3 {
			continue // changed under us: look again
		}
		if err != nil {
			return foreign.Applied{}, err
		}
		a, err := g.settle(ctx, op, rec, id, before)
		if err != nil {
			return a, err
		}
		a.Snapshot = nil
		return a, nil
	}
}

func (g *Gateway) applyComment(ctx context.Context, st *foreign.State, op *foreign.Op, rec *replica.Record) (foreign.Applied, error) {
	if _, known, err := st.Remote(op.Ref); err != nil || known {
		if err == nil && !op.Create {
			err = fmt.Errorf("rt: RT cannot edit or delete a comment (comment %s); the change stays here only", op.Ref.Record)
		}
		return foreign.Applied{}, err
	}
	if rec == nil {
		return foreign.Applied{}, nil
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
	if op.Attempts > 1 {
		// A retry after a lost answer or a crash: the comment may be there.
		txnID, found, err := g.findComment(ctx, id, op.Ref.Record, 0)
		if err != nil {
			return foreign.Applied{}, err
		}
		if found {
			return g.commentApplied(ctx, txnID)
		}
	}
	_, etag, err := g.getTicket(ctx, id)
	if err != nil {
		return foreign.Applied{}, err
	}
	before, _ := strconv.ParseUint(strings.Trim(etag, `"`), 10, 64)
	kind := "comment"
	if rec.Get("kind") == "correspond" {
		kind = "correspond"
	}
	body := map[string]any{"Content": strings.TrimRight(rec.Get("body"), "\n") + "\n\n" + marker(op.Ref.Record), "ContentType": "text/plain"}
	_, perr := g.c.do(ctx, "POST", "/ticket/"+url.PathEscape(id)+"/"+kind, nil, nil, body, nil)
	var e *Error
	if errors.As(perr, &e) {
		return foreign.Applied{}, perr // RT answered: nothing was made
	}
	// Success, or a lost answer: the history tells.
	txnID, found, err := g.findComment(ctx, id, op.Ref.Record, before)
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
// the comment of ours that carries record's marker.
func (g *Gateway) findComment(ctx context.Context, id string, record uuid.UUID, after uint64) (string, bool, error) {
	hist, err := g.history(ctx, id)
	if err != nil {
		return "", false, err
	}
	var mine []txn
	for _, h := range hist {
		if (h.Type == "Comment" || h.Type == "Correspond") && h.Creator.ID.str() == g.user && h.ID.uint() > after {
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
	a := foreign.Applied{Remote: remoteTxn(txnID), Echoes: []string{remoteTxn(txnID)}, Report: map[string]string{"author": g.user}}
	if ts, err := rtTime(t.Created); err == nil {
		a.Report["created"] = ts.Format(time.RFC3339)
	}
	return a, nil
}
