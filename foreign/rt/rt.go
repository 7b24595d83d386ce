// Package rt is the gateway to Request Tracker (RT 5), through its REST2
// API.
//
// Address: rt:http://HOST[:PORT][/WEBPATH][/?queue=NAME]. Without a queue
// the gateway syncs every queue the user can see. Credentials come from
// the environment (PROPHET_RT_USER with PROPHET_RT_PASSWORD, or with
// PROPHET_RT_TOKEN); they are never printed or written to a log.
//
// Records: "ticket" (subject, status, queue, owner, requestors, priority,
// created, updated) and "comment" (ticket: the ticket record's UUID; body;
// kind: create, comment or correspond; author; created).
//
// Pull reads RT's global transaction feed after the last transaction ID
// seen (the cursor), oldest first, and turns each transaction into one
// changeset. Each ticket is its own origin (UUIDv5 of its URL) and the
// transaction ID is the changeset's origin sequence number, so every
// gateway replica that pulls the same transaction makes the very same
// changeset. Old values come from RT's history.
//
// Push creates tickets (with a marker line naming the record in their first
// message, so that every gateway agrees on the record and a retry finds
// the ticket instead of making a second), updates fields with If-Match on
// the ticket's ETag, and adds comments (with the same marker). It records
// the exact transaction IDs each write made: pull skips those, and only
// those.
package rt

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/foreign"
)

// Record types and the properties of each.
const (
	TicketType  = "ticket"
	CommentType = "comment"
)

// writable are the ticket properties a push sets; derived ones RT keeps.
var (
	writable = []string{"owner", "priority", "queue", "requestors", "status", "subject"}
	derived  = []string{"created", "updated"}
)

// Gateway is one RT server (and optionally one queue).
type Gateway struct {
	c     *client
	url   string // canonical address: the foreign replica's identity
	web   string // RT's web root, http://HOST:PORT[/WEBPATH]
	queue string
	user  string

	mu      sync.Mutex
	queueOK bool              // the queue exists (checkQueue)
	names   map[string]string // "user/ID", "queue/ID" -> name

	requests atomic.Int64
}

// Config configures a gateway.
type Config struct {
	Address     string // rt:http://HOST:PORT/?queue=General
	Credentials Credentials
	Timeout     time.Duration // per request (default 60s)
	// Transport carries the requests, under the retries (default
	// http.DefaultTransport).
	Transport http.RoundTripper
}

// CredentialsFromEnv reads PROPHET_RT_USER, PROPHET_RT_PASSWORD and
// PROPHET_RT_TOKEN.
func CredentialsFromEnv() Credentials {
	return Credentials{User: os.Getenv("PROPHET_RT_USER"), Password: os.Getenv("PROPHET_RT_PASSWORD"), Token: os.Getenv("PROPHET_RT_TOKEN")}
}

// ParseAddress splits rt:URL[?queue=Q] into RT's web root and the queue,
// and returns the canonical address.
func ParseAddress(addr string) (web, queue, canonical string, err error) {
	rest, ok := strings.CutPrefix(addr, "rt:")
	if !ok {
		return "", "", "", fmt.Errorf("rt: address %q does not start with rt: (write rt:http://HOST:PORT/?queue=NAME)", foreign.RedactAddr(addr))
	}
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", "", fmt.Errorf("rt: address %q: want rt:http://HOST[:PORT][/PATH][/?queue=NAME]", foreign.RedactAddr(addr))
	}
	if u.User != nil {
		return "", "", "", fmt.Errorf("rt: address %q holds credentials; put them in PROPHET_RT_USER and PROPHET_RT_PASSWORD (or PROPHET_RT_TOKEN) instead", redact(rest))
	}
	for k := range u.Query() {
		if k != "queue" {
			return "", "", "", fmt.Errorf("rt: address %q: unknown parameter %q (only queue)", foreign.RedactAddr(addr), k)
		}
	}
	queue = u.Query().Get("queue")
	web = strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.Path, "/")
	canonical = "rt:" + web + "/"
	if queue != "" {
		canonical += "?queue=" + url.QueryEscape(queue)
	}
	return web, queue, canonical, nil
}

// New makes a gateway.
func New(cfg Config) (*Gateway, error) {
	web, queue, canonical, err := ParseAddress(cfg.Address)
	if err != nil {
		return nil, err
	}
	if cfg.Credentials.User == "" {
		return nil, errors.New("rt: no RT user: set PROPHET_RT_USER, with PROPHET_RT_PASSWORD or PROPHET_RT_TOKEN")
	}
	if cfg.Credentials.Password == "" && cfg.Credentials.Token == "" {
		return nil, fmt.Errorf("rt: no password or token for RT user %s: set PROPHET_RT_PASSWORD or PROPHET_RT_TOKEN", cfg.Credentials.User)
	}
	g := &Gateway{url: canonical, web: web, queue: queue, user: cfg.Credentials.User,
		names: map[string]string{}}
	g.c = newClient(web, cfg.Credentials, cfg.Timeout, func() { g.requests.Add(1) })
	if cfg.Transport != nil {
		g.c.hc.Transport = &foreign.Retry{Next: cfg.Transport, Attempts: 4, PerTry: g.c.hc.Transport.(*foreign.Retry).PerTry}
	}
	return g, nil
}

// writable are the ticket properties a push sets. A foreign replica of
// one queue puts every ticket in its queue and moves none: a ticket
// relayed from another queue (or server) keeps the queue it came from.
func (g *Gateway) writable() []string {
	if g.queue == "" {
		return writable
	}
	return slices.DeleteFunc(slices.Clone(writable), func(p string) bool { return p == "queue" })
}

func (g *Gateway) Kind() string      { return "rt" }
func (g *Gateway) URL() string       { return g.url }
func (g *Gateway) Derived() []string { return derived }
func (g *Gateway) Requests() int64   { return g.requests.Load() }
func (g *Gateway) ticketURL(id string) string {
	return g.web + "/REST/2.0/ticket/" + id
}
func (g *Gateway) txnURL(id string) string { return g.web + "/REST/2.0/transaction/" + id }

// TicketOrigin is the origin UUID of the changesets made from ticket id's
// transactions (and its record UUID, unless a push made it).
func (g *Gateway) TicketOrigin(id string) uuid.UUID { return foreign.NameUUID(g.ticketURL(id)) }

func remoteTicket(id string) string { return "ticket/" + id }
func remoteTxn(id string) string    { return "txn/" + id }

// feedQuery is the TicketSQL of the transaction feed after id.
func (g *Gateway) feedQuery(after uint64) string {
	q := fmt.Sprintf("ObjectType = 'RT::Ticket' AND id > %d", after)
	if g.queue != "" {
		q += " AND TicketQueue = '" + strings.ReplaceAll(g.queue, "'", `\'`) + "'"
	}
	return q
}

// Latest is the newest transaction of the feed: one request (two the
// first time, when the queue is checked).
func (g *Gateway) Latest(ctx context.Context, _ *foreign.State) (uint64, error) {
	if err := g.checkQueue(ctx); err != nil {
		return 0, err
	}
	var p page[txn]
	q := url.Values{"query": {g.feedQuery(0)}, "orderby": {"id"}, "order": {"DESC"}, "per_page": {"1"}}
	if _, err := g.c.do(ctx, "GET", "/transactions", q, nil, nil, &p); err != nil {
		return 0, err
	}
	if len(p.Items) == 0 {
		return 0, nil
	}
	return p.Items[0].ID.uint(), nil
}

// checkQueue makes sure, once per gateway, that the queue exists: RT
// answers a search of an unknown queue with nothing, which would look like
// a queue with no tickets.
func (g *Gateway) checkQueue(ctx context.Context) error {
	if g.queue == "" {
		return nil
	}
	g.mu.Lock()
	checked := g.queueOK
	g.mu.Unlock()
	if checked {
		return nil
	}
	// A search by name, not GET /queue/NAME: a name may hold a "/".
	var pg page[struct{}]
	query := []map[string]any{{"field": "Name", "value": g.queue}}
	if _, err := g.c.do(ctx, "POST", "/queues", url.Values{"per_page": {"1"}}, nil, query, &pg); err != nil {
		return err
	}
	if pg.Total == 0 {
		return fmt.Errorf("rt: %s has no queue %q, or user %s cannot see it: check the address's queue= and the user's rights", g.web, g.queue, g.user)
	}
	g.mu.Lock()
	g.queueOK = true
	g.mu.Unlock()
	return nil
}

const pageSize = 100

// Changes reads the feed after `after`, a page at a time.
func (g *Gateway) Changes(ctx context.Context, st *foreign.State, after uint64, emit func(foreign.Change) error) error {
	p := &puller{g: g, st: st, snaps: map[string]map[string]string{}, refs: map[string]foreign.Ref{},
		initial: map[initialKey]map[string]string{}}
	last := after
	for {
		var pg page[txn]
		q := url.Values{"query": {g.feedQuery(last)}, "orderby": {"id"}, "order": {"ASC"},
			"per_page": {strconv.Itoa(pageSize)}, "fields": {txnFields}}
		if _, err := g.c.do(ctx, "GET", "/transactions", q, nil, nil, &pg); err != nil {
			return err
		}
		if len(pg.Items) == 0 {
			return nil
		}
		contents, err := g.contents(ctx, pg.Items)
		if err != nil {
			return err
		}
		clear(p.initial)
		if err := p.prefetch(ctx, pg.Items); err != nil {
			return err
		}
		for i := range pg.Items {
			t := &pg.Items[i]
			c, err := p.translate(ctx, t, contents)
			if err != nil {
				return fmt.Errorf("rt: transaction %s of ticket %s: %w", t.ID, t.ObjectId, err)
			}
			if err := emit(c); err != nil {
				return err
			}
			last = t.ID.uint()
		}
		if len(pg.Items) < pageSize {
			return nil
		}
	}
}

// contents fetches the text of the transactions that carry a message, in
// one paged request over the range of IDs.
func (g *Gateway) contents(ctx context.Context, txns []txn) (map[string]string, error) {
	var lo, hi uint64
	for _, t := range txns {
		if t.Type == "Create" || t.Type == "Comment" || t.Type == "Correspond" {
			id := t.ID.uint()
			if lo == 0 || id < lo {
				lo = id
			}
			hi = max(hi, id)
		}
	}
	out := map[string]string{}
	if lo == 0 {
		return out, nil
	}
	query := []map[string]any{
		{"field": "TransactionId", "operator": ">=", "value": lo},
		{"field": "TransactionId", "operator": "<=", "value": hi, "entry_aggregator": "AND"},
	}
	for pageN := 1; ; pageN++ {
		var pg page[attachment]
		q := url.Values{"fields": {attachmentFields}, "per_page": {strconv.Itoa(pageSize)}, "page": {strconv.Itoa(pageN)},
			"orderby": {"id"}, "order": {"ASC"}}
		if _, err := g.c.do(ctx, "POST", "/attachments", q, nil, query, &pg); err != nil {
			return nil, err
		}
		for _, a := range pg.Items {
			id := string(a.TransactionId)
			if _, have := out[id]; have || !strings.HasPrefix(a.ContentType, "text/plain") {
				continue
			}
			out[id] = a.Content
		}
		if pg.Page >= pg.Pages || len(pg.Items) == 0 {
			return out, nil
		}
	}
}

// markers are the lines a push appends to a message it sends, naming the
// record that the message's ticket or comment is.
var markers = foreign.NewMarker("[prophet-record: ", "]")

func marker(id uuid.UUID) string { return markers.Line(id) }

func splitMarker(s string) (string, uuid.UUID) { return markers.Split(s) }

// userName turns a user ID (as Set Owner and AddWatcher write them) into
// the name REST2 uses everywhere else.
func (g *Gateway) userName(ctx context.Context, id string) (string, error) {
	return g.name(ctx, "user", id)
}

// queueName turns a queue ID (as Set Queue and tickets write them) into its
// name.
func (g *Gateway) queueName(ctx context.Context, id string) (string, error) {
	return g.name(ctx, "queue", id)
}

// name reads the Name of /KIND/ID once per gateway.
func (g *Gateway) name(ctx context.Context, kind, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	k := kind + "/" + id
	g.mu.Lock()
	n, ok := g.names[k]
	g.mu.Unlock()
	if ok {
		return n, nil
	}
	var v struct {
		Name string `json:"Name"`
	}
	if _, err := g.c.do(ctx, "GET", "/"+kind+"/"+url.PathEscape(id), nil, nil, nil, &v); err != nil {
		return "", err
	}
	g.mu.Lock()
	g.names[k] = v.Name
	g.mu.Unlock()
	return v.Name, nil
}

// getTicket reads a ticket and its ETag.
func (g *Gateway) getTicket(ctx context.Context, id string) (*ticket, string, error) {
	var t ticket
	h, err := g.c.do(ctx, "GET", "/ticket/"+url.PathEscape(id), nil, nil, nil, &t)
	if err != nil {
		return nil, "", err
	}
	return &t, h.Get("ETag"), nil
}

// snapshotOf is a ticket's current values as the record's properties.
func (g *Gateway) snapshotOf(ctx context.Context, t *ticket) (map[string]string, error) {
	q, err := g.queueName(ctx, string(t.Queue.ID))
	if err != nil {
		return nil, err
	}
	var reqs []string
	for _, r := range t.Requestor {
		reqs = append(reqs, string(r.ID))
	}
	created, err := rtTime(t.Created)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"subject":    t.Subject,
		"status":     t.Status,
		"queue":      q,
		"owner":      string(t.Owner.ID),
		"requestors": joinSet(reqs),
		"priority":   t.Priority,
		"created":    created.Format(time.RFC3339),
	}, nil
}

// history reads all of a ticket's transactions, oldest first.
func (g *Gateway) history(ctx context.Context, id string) ([]txn, error) {
	var all []txn
	for pageN := 1; ; pageN++ {
		var pg page[txn]
		q := url.Values{"fields": {txnFields}, "per_page": {strconv.Itoa(pageSize)}, "page": {strconv.Itoa(pageN)}}
		if _, err := g.c.do(ctx, "GET", "/ticket/"+url.PathEscape(id)+"/history", q, nil, nil, &pg); err != nil {
			return nil, err
		}
		all = append(all, pg.Items...)
		if pg.Page >= pg.Pages || len(pg.Items) == 0 {
			break
		}
	}
	slices.SortFunc(all, func(a, b txn) int { return cmpU(a.ID.uint(), b.ID.uint()) })
	return all, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// stateAt is ticket id's properties right after transaction at: its
// current values with every later transaction undone, newest first. It
// depends only on RT's history, so every gateway computes the same.
func (g *Gateway) stateAt(ctx context.Context, id string, at *txn) (map[string]string, error) {
	t, _, err := g.getTicket(ctx, id)
	if err != nil {
		return nil, err
	}
	hist, err := g.history(ctx, id)
	if err != nil {
		return nil, err
	}
	return g.stateFrom(ctx, t, hist, at)
}

// stateFrom is stateAt from the ticket's current values and its
// transactions (all, or at least those after at), oldest first.
func (g *Gateway) stateFrom(ctx context.Context, t *ticket, hist []txn, at *txn) (map[string]string, error) {
	snap, err := g.snapshotOf(ctx, t)
	if err != nil {
		return nil, err
	}
	atID := at.ID.uint()
	for i := len(hist) - 1; i >= 0 && hist[i].ID.uint() > atID; i-- {
		if err := g.undo(ctx, snap, &hist[i]); err != nil {
			return nil, err
		}
	}
	snap["updated"] = at.Created
	if ts, err := rtTime(at.Created); err == nil {
		snap["updated"] = ts.Format(time.RFC3339)
	}
	return snap, nil
}

// prefetch computes, for a page of the feed, the first state of every
// ticket the gateway sees for the first time in it, with a few requests
// for the whole page (the tickets in one search, their later transactions
// in another) instead of two per ticket.
func (p *puller) prefetch(ctx context.Context, items []txn) error {
	g := p.g
	first := map[string]*txn{} // ticket -> its first transaction in the page
	var ids []string
	for i := range items {
		t := &items[i]
		tid := string(t.ObjectId)
		if t.ObjectType != "RT::Ticket" || first[tid] != nil {
			continue
		}
		remote := remoteTicket(tid)
		snap, err := p.snapshot(remote)
		if err != nil {
			return err
		}
		_, known, err := p.ref(remote)
		if err != nil {
			return err
		}
		if snap == nil || !known {
			first[tid] = t
			ids = append(ids, tid)
		}
	}
	const chunk = 50
	for len(ids) > 0 {
		n := min(chunk, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		var or, objOr []string
		var minAt uint64
		for _, id := range batch {
			or = append(or, "id = "+id)
			objOr = append(objOr, "ObjectId = "+id)
			if at := first[id].ID.uint(); minAt == 0 || at < minAt {
				minAt = at
			}
		}
		tickets := map[string]*ticket{}
		var tp page[ticket]
		q := url.Values{"query": {strings.Join(or, " OR ")}, "per_page": {strconv.Itoa(pageSize)},
			"fields": {"Subject,Status,Queue,Owner,Requestor,Priority,Created"}}
		if _, err := g.c.do(ctx, "GET", "/tickets", q, nil, nil, &tp); err != nil {
			return err
		}
		for i := range tp.Items {
			tickets[string(tp.Items[i].ID)] = &tp.Items[i]
		}
		later := map[string][]txn{}
		last := minAt
		for {
			var pg page[txn]
			q := url.Values{"query": {fmt.Sprintf("ObjectType = 'RT::Ticket' AND id > %d AND (%s)", last, strings.Join(objOr, " OR "))},
				"orderby": {"id"}, "order": {"ASC"}, "per_page": {strconv.Itoa(pageSize)}, "fields": {txnFields}}
			if _, err := g.c.do(ctx, "GET", "/transactions", q, nil, nil, &pg); err != nil {
				return err
			}
			for _, t := range pg.Items {
				later[string(t.ObjectId)] = append(later[string(t.ObjectId)], t)
				last = t.ID.uint()
			}
			if len(pg.Items) < pageSize {
				break
			}
		}
		for _, id := range batch {
			t, ok := tickets[id]
			if !ok {
				continue // not visible: stateAt will say why
			}
			snap, err := g.stateFrom(ctx, t, later[id], first[id])
			if err != nil {
				return err
			}
			p.initial[initialKey{id, string(first[id].ID)}] = snap
		}
	}
	return nil
}

type initialKey struct{ ticket, txn string }

// field maps a Set transaction's field to the record's property.
func field(t *txn) string {
	switch {
	case t.Type == "Status":
		return "status"
	case t.Type == "Set":
		switch t.Field {
		case "Subject":
			return "subject"
		case "Status":
			return "status"
		case "Queue":
			return "queue"
		case "Owner":
			return "owner"
		case "Priority":
			return "priority"
		}
	}
	return ""
}

// value maps a Set transaction's raw value of prop to the record's form
// (users and queues by name).
func (g *Gateway) value(ctx context.Context, prop, raw string) (string, error) {
	switch prop {
	case "owner":
		return g.userName(ctx, raw)
	case "queue":
		return g.queueName(ctx, raw)
	}
	return raw, nil
}

func (g *Gateway) undo(ctx context.Context, snap map[string]string, t *txn) error {
	if p := field(t); p != "" {
		v, err := g.value(ctx, p, t.OldValue)
		if err != nil {
			return err
		}
		snap[p] = v
		return nil
	}
	if t.Field != "Requestor" {
		return nil
	}
	return g.watcher(ctx, snap, t, false)
}

// watcher applies an AddWatcher or DelWatcher transaction of a requestor
// to snap's requestors, forward (redo) or backward (undo).
func (g *Gateway) watcher(ctx context.Context, snap map[string]string, t *txn, forward bool) error {
	var id string
	add := forward
	switch t.Type {
	case "AddWatcher":
		id = t.NewValue
	case "DelWatcher":
		id, add = t.OldValue, !forward
	default:
		return nil
	}
	n, err := g.userName(ctx, id)
	if err != nil {
		return err
	}
	set := splitSet(snap["requestors"])
	if add {
		set = append(set, n)
	} else {
		set = slices.DeleteFunc(set, func(s string) bool { return s == n })
	}
	snap["requestors"] = joinSet(set)
	return nil
}

func splitSet(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ", ")
}

// joinSet is the form of a set of names: sorted, without repeats, ", "
// between them.
func joinSet(v []string) string {
	v = slices.Clone(v)
	slices.Sort(v)
	return strings.Join(slices.Compact(v), ", ")
}

// puller translates the feed, keeping each ticket's snapshot as the feed
// moves (overlaying the state handle's).
type puller struct {
	g     *Gateway
	st    *foreign.State
	snaps map[string]map[string]string // remote ticket -> snapshot
	refs  map[string]foreign.Ref       // remote ticket -> record
	// initial is the first state of the tickets new in the page being
	// translated (prefetch).
	initial map[initialKey]map[string]string
}

func (p *puller) snapshot(remote string) (map[string]string, error) {
	if s, ok := p.snaps[remote]; ok {
		return s, nil
	}
	s, err := p.st.Snapshot(remote)
	if err != nil {
		return nil, err
	}
	if s != nil {
		p.snaps[remote] = s
	}
	return s, nil
}

func (p *puller) ref(remote string) (foreign.Ref, bool, error) {
	if r, ok := p.refs[remote]; ok {
		return r, true, nil
	}
	r, ok, err := p.st.Record(remote)
	if ok {
		p.refs[remote] = r
	}
	return r, ok, err
}

// translate turns one transaction into a Change.
func (p *puller) translate(ctx context.Context, t *txn, contents map[string]string) (foreign.Change, error) {
	g := p.g
	pos := t.ID.uint()
	c := foreign.Change{Pos: pos}
	if t.ObjectType != "RT::Ticket" {
		return c, nil
	}
	tid := string(t.ObjectId)
	remote := remoteTicket(tid)
	created, err := rtTime(t.Created)
	if err != nil {
		return c, err
	}
	stamp := created.Format(time.RFC3339)
	echo, isEcho, err := p.st.Echo(remoteTxn(string(t.ID)))
	if err != nil {
		return c, err
	}
	cs := &changeset.Changeset{Origin: g.TicketOrigin(tid), OriginSeq: pos, Creator: t.Creator.ID.str(), Created: created}
	var tref foreign.Ref
	snap, err := p.snapshot(remote)
	if err != nil {
		return c, err
	}
	ref, known, err := p.ref(remote)
	if err != nil {
		return c, err
	}
	fresh := snap == nil || !known // the first the gateway sees of the ticket
	if fresh {
		body, rec := "", uuid.Nil
		if t.Type == "Create" {
			body, rec = splitMarker(contents[string(t.ID)])
		}
		if known {
			rec = ref.Record
		}
		if rec == uuid.Nil {
			rec = g.TicketOrigin(tid)
		}
		tref = foreign.Ref{Type: TicketType, Record: rec}
		if snap == nil {
			if pre, ok := p.initial[initialKey{tid, string(t.ID)}]; ok {
				snap = pre
			} else if snap, err = g.stateAt(ctx, tid, t); err != nil {
				return c, err
			}
		}
		ch := changeset.Change{RecordType: TicketType, Record: rec, Op: changeset.Add}
		for _, k := range slices.Sorted(maps.Keys(snap)) {
			if snap[k] != "" {
				ch.Props = append(ch.Props, changeset.PropChange{Name: k, New: snap[k]})
			}
		}
		cs.Changes = append(cs.Changes, ch)
		if t.Type == "Create" && strings.TrimSpace(body) != "" {
			cs.Changes = append(cs.Changes, p.comment(t, tref, body, "create", stamp))
		}
	} else {
		tref = ref
		next := maps.Clone(snap)
		translated := false
		switch {
		case field(t) != "":
			prop := field(t)
			oldV, err := g.value(ctx, prop, t.OldValue)
			if err != nil {
				return c, err
			}
			newV, err := g.value(ctx, prop, t.NewValue)
			if err != nil {
				return c, err
			}
			next[prop], translated = newV, true
			ch := changeset.Change{RecordType: TicketType, Record: tref.Record, Op: changeset.Update,
				Props: []changeset.PropChange{{Name: prop, Old: oldV, New: newV}}}
			cs.Changes = append(cs.Changes, ch)
		case t.Field == "Requestor" && (t.Type == "AddWatcher" || t.Type == "DelWatcher"):
			if err := g.watcher(ctx, next, t, true); err != nil {
				return c, err
			}
			translated = true
			cs.Changes = append(cs.Changes, changeset.Change{RecordType: TicketType, Record: tref.Record, Op: changeset.Update,
				Props: []changeset.PropChange{{Name: "requestors", Old: snap["requestors"], New: next["requestors"]}}})
		case t.Type == "Comment" || t.Type == "Correspond":
			translated = true
			body, rec := splitMarker(contents[string(t.ID)])
			cm := p.comment(t, tref, body, strings.ToLower(t.Type), stamp)
			if rec != uuid.Nil {
				cm.Record = rec
			}
			cs.Changes = append(cs.Changes, cm)
		}
		if !translated {
			if isEcho { // our push's Create (or an update of nothing kept)
				c.Ref, c.Version, c.Echo = tref, int64(pos), echo
			}
			return c, nil // a transaction of nothing we keep (email records, time worked)
		}
		next["updated"] = stamp
		if snap["updated"] != stamp {
			upd := changeset.PropChange{Name: "updated", Old: snap["updated"], New: stamp}
			i := slices.IndexFunc(cs.Changes, func(ch changeset.Change) bool { return ch.Record == tref.Record })
			if i < 0 {
				cs.Changes = append(cs.Changes, changeset.Change{RecordType: TicketType, Record: tref.Record, Op: changeset.Update})
				i = len(cs.Changes) - 1
			}
			cs.Changes[i].Props = append(cs.Changes[i].Props, upd)
			slices.SortFunc(cs.Changes[i].Props, func(a, b changeset.PropChange) int { return strings.Compare(a.Name, b.Name) })
		}
		snap = next
	}
	p.snaps[remote] = snap
	p.refs[remote] = tref
	c.Ref, c.Version = tref, int64(pos)
	final := snap
	c.State = snap
	origin := cs.Origin
	var commentRef *foreign.Ref
	for _, ch := range cs.Changes {
		if ch.RecordType == CommentType {
			commentRef = &foreign.Ref{Type: CommentType, Record: ch.Record}
		}
	}
	txnKey := remoteTxn(string(t.ID))
	c.Record = func(w *foreign.Writer) error {
		if err := w.Map(remote, tref); err != nil {
			return err
		}
		if commentRef != nil { // a comment's transaction is its remote object
			if err := w.Map(txnKey, *commentRef); err != nil {
				return err
			}
		}
		if err := w.SetOwns(origin, true); err != nil {
			return err
		}
		return w.SetSnapshot(remote, final)
	}
	if isEcho {
		c.Echo = echo
		return c, nil
	}
	if len(cs.Changes) > 1 {
		slices.SortFunc(cs.Changes, func(a, b changeset.Change) int {
			if a.RecordType != b.RecordType {
				return strings.Compare(a.RecordType, b.RecordType)
			}
			return slices.Compare(a.Record[:], b.Record[:])
		})
	}
	c.Changeset = cs
	return c, nil
}

func (p *puller) comment(t *txn, tref foreign.Ref, body, kind, stamp string) changeset.Change {
	props := map[string]string{"ticket": tref.Record.String(), "body": body, "kind": kind, "author": t.Creator.ID.str(), "created": stamp}
	ch := changeset.Change{RecordType: CommentType, Record: foreign.NameUUID(p.g.txnURL(string(t.ID))), Op: changeset.Add}
	for _, k := range slices.Sorted(maps.Keys(props)) {
		if props[k] != "" {
			ch.Props = append(ch.Props, changeset.PropChange{Name: k, New: props[k]})
		}
	}
	return ch
}

func (f flexID) str() string { return string(f) }

// Owns says whether origin is a ticket of this RT: seq is one of its
// transactions.
func (g *Gateway) Owns(ctx context.Context, _ *foreign.State, origin uuid.UUID, seq uint64) (bool, error) {
	var t txn
	_, err := g.c.do(ctx, "GET", "/transaction/"+strconv.FormatUint(seq, 10), nil, nil, nil, &t)
	var e *Error
	if errors.Is(err, errNotFound) || (errors.As(err, &e) && e.Status == http.StatusForbidden) {
		return false, nil // not there, or not this user's to see: not from here
	}
	if err != nil {
		return false, err
	}
	if t.ObjectType != "RT::Ticket" || g.TicketOrigin(string(t.ObjectId)) != origin {
		return false, nil
	}
	if g.queue == "" {
		return true, nil
	}
	// A ticket of this server, but of this foreign replica only if it is
	// in its queue.
	tk, _, err := g.getTicket(ctx, string(t.ObjectId))
	if err != nil {
		return false, err
	}
	q, err := g.queueName(ctx, string(tk.Queue.ID))
	return q == g.queue, err
}

// Outbound: ticket properties RT takes, and new comments.
func (g *Gateway) Outbound(ch *changeset.Change) ([]string, bool) {
	switch ch.RecordType {
	case TicketType:
		var props []string
		for _, p := range ch.Props {
			if slices.Contains(g.writable(), p.Name) {
				props = append(props, p.Name)
			}
		}
		if len(props) == 0 && ch.Op != changeset.Delete {
			return nil, false
		}
		return props, true
	case CommentType:
		for _, p := range ch.Props {
			if p.Name == "body" || ch.Op != changeset.Update {
				return []string{"body"}, true
			}
		}
	}
	return nil, false
}
