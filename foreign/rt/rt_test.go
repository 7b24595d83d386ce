package rt

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// server is a real RT 5 for the tests: .ci/rt up starts one and prints
// its URL, which goes in PROPHET_RT_TEST_URL. Without it the tests skip,
// unless PROPHET_REQUIRE_RT is set (CI sets it): then they fail.
type server struct {
	web  string
	cred Credentials
	c    *client
}

func rtServer(t *testing.T) *server {
	t.Helper()
	web := os.Getenv("PROPHET_RT_TEST_URL")
	if web == "" {
		if os.Getenv("PROPHET_REQUIRE_RT") != "" {
			t.Fatal("PROPHET_REQUIRE_RT is set but PROPHET_RT_TEST_URL is not: start RT with .ci/rt up and export PROPHET_RT_TEST_URL")
		}
		t.Skip("no RT server: run .ci/rt up and export PROPHET_RT_TEST_URL=http://127.0.0.1:18280")
	}
	cred := Credentials{User: envOr("PROPHET_RT_TEST_USER", "root"), Password: envOr("PROPHET_RT_TEST_PASSWORD", "password")}
	return &server{web: web, cred: cred, c: newClient(web, cred, 0, nil)}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// queue makes a new queue, so each test has a feed of its own.
func (s *server) queue(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t-%s-%d", t.Name(), time.Now().UnixNano())
	if len(name) > 60 {
		name = name[:60]
	}
	if _, err := s.c.do(context.Background(), "POST", "/queue", nil, nil, map[string]any{"Name": name}, nil); err != nil {
		t.Fatalf("making queue %s: %v", name, err)
	}
	return name
}

func (s *server) address(queue string) string {
	return "rt:" + s.web + "/?queue=" + url.QueryEscape(queue)
}

func (s *server) createTicket(t testing.TB, queue, subject, content, requestor string) string {
	t.Helper()
	var out struct {
		ID flexID `json:"id"`
	}
	body := map[string]any{"Queue": queue, "Subject": subject, "Content": content, "Requestor": requestor}
	if _, err := s.c.do(context.Background(), "POST", "/ticket", nil, nil, body, &out); err != nil {
		t.Fatalf("creating a ticket in RT: %v", err)
	}
	return string(out.ID)
}

func (s *server) ticket(t testing.TB, id string) *ticket {
	t.Helper()
	tk, _, err := (&Gateway{c: s.c}).getTicket(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func (s *server) set(t testing.TB, id string, fields map[string]any) {
	t.Helper()
	if _, err := s.c.do(context.Background(), "PUT", "/ticket/"+id, nil, nil, fields, nil); err != nil {
		t.Fatalf("editing ticket %s in RT: %v", id, err)
	}
}

// gateway is one gateway replica with its foreign replica for an address.
type gateway struct {
	*foreigntest.Gateway
	gw *Gateway
}

func (s *server) gateway(t *testing.T, dir, addr string) *gateway {
	t.Helper()
	gw, err := New(Config{Address: addr, Credentials: s.cred})
	if err != nil {
		t.Fatal(err)
	}
	return &gateway{Gateway: foreigntest.Open(t, dir, gw), gw: gw}
}

func (g *gateway) pull(t *testing.T) merge.Report { return foreigntest.Pull(t, g.F, nil) }

func (g *gateway) push(t *testing.T) foreign.PushReport { return foreigntest.Push(t, g.F) }

func (g *gateway) record(t *testing.T, typ string, id uuid.UUID) *replica.Record {
	return g.Get(t, foreign.Ref{Type: typ, Record: id})
}

func (g *gateway) list(t *testing.T, typ string) []*replica.Record {
	t.Helper()
	var recs []*replica.Record
	if err := g.Local.R.List(typ, nil, func(r *replica.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

func TestPullEditPushPull(t *testing.T) {
	s := rtServer(t)
	q := s.queue(t)
	id := s.createTicket(t, q, "printer on fire", "it burns\nreally", "bob@example.com")
	g := s.gateway(t, filepath.Join(t.TempDir(), "bob"), s.address(q))

	if rep := g.pull(t); rep.Integrated != 1 {
		t.Fatalf("first pull integrated %d changesets, want 1 (the ticket's Create)", rep.Integrated)
	}
	tu := g.gw.TicketOrigin(id)
	rec := g.record(t, TicketType, tu)
	for k, want := range map[string]string{"subject": "printer on fire", "status": "new", "queue": q, "requestors": "bob@example.com", "owner": "Nobody"} {
		if got := rec.Get(k); got != want {
			t.Errorf("ticket %s = %q, want %q", k, got, want)
		}
	}
	comments := g.list(t, CommentType)
	if len(comments) != 1 || comments[0].Get("body") != "it burns\nreally" || comments[0].Get("kind") != "create" || comments[0].Get("ticket") != tu.String() {
		t.Fatalf("comments after the pull: %+v", comments)
	}

	// Edit here, push, and RT has it.
	ctx := context.Background()
	if _, err := g.Local.R.Commit(ctx, replica.Edit{Type: TicketType, Record: tu, Op: replica.Update,
		Set: map[string]string{"subject": "printer fixed", "status": "resolved"}}); err != nil {
		t.Fatal(err)
	}
	cm, err := g.Local.R.Commit(ctx, replica.Edit{Type: CommentType, Op: replica.Create,
		Set: map[string]string{"ticket": tu.String(), "body": "swapped the fuser", "kind": "comment"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep := g.push(t); rep.Completed != 2 {
		t.Fatalf("push completed %d ops, want 2: %+v", rep.Completed, rep)
	}
	tk := s.ticket(t, id)
	if tk.Subject != "printer fixed" || tk.Status != "resolved" {
		t.Fatalf("RT has subject %q status %q after the push", tk.Subject, tk.Status)
	}

	// The pull after it brings nothing back: our own transactions are
	// known exactly.
	latest := g.Local.R.LatestSeq()
	if rep := g.pull(t); rep.Integrated != 0 {
		t.Fatalf("the pull after our push integrated %d changesets, want 0 (echoes)", rep.Integrated)
	}
	// The log may grow by one thing only: when the comment (pushed in
	// parallel with the ticket's edit) landed in a later second than the
	// edit's answer, RT's LastUpdated moved past what the push reported,
	// and the pull brings the ticket's updated level (foreign.catchUp).
	for seq := latest + 1; seq <= g.Local.R.LatestSeq(); seq++ {
		cs, err := g.Local.R.ReadChangeset(seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range cs.Changes {
			for _, p := range ch.Props {
				if p.Name != "updated" || ch.Record != tu {
					t.Fatalf("the log grew from %d to %d on a pull of our own echoes: %s %s %s", latest, g.Local.R.LatestSeq(), ch.RecordType, ch.Record, p.Name)
				}
			}
		}
	}
	if got := g.list(t, CommentType); len(got) != 2 {
		t.Fatalf("%d comments after the pull, want 2", len(got))
	}
	_ = cm

	// A change made in RT comes over, with its old value checked.
	s.set(t, id, map[string]any{"Priority": 7})
	if rep := g.pull(t); rep.Integrated != 1 || rep.Conflicts != 0 {
		t.Fatalf("pull of an RT edit: %+v", rep)
	}
	if got := g.record(t, TicketType, tu).Get("priority"); got != "7" {
		t.Fatalf("priority %q after pulling RT's edit, want 7", got)
	}
	g.Verify(t)
}

func TestPushNewTicket(t *testing.T) {
	s := rtServer(t)
	q := s.queue(t)
	g := s.gateway(t, filepath.Join(t.TempDir(), "bob"), s.address(q))
	ctx := context.Background()
	cs, err := g.Local.R.Commit(ctx, replica.Edit{Type: TicketType, Op: replica.Create,
		Set: map[string]string{"subject": "made offline", "requestors": "carol@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	tu := cs.Changes[0].Record
	if rep := g.push(t); rep.Completed != 1 {
		t.Fatalf("push: %+v", rep)
	}
	remote, ok, err := g.F.State().Remote(foreign.Ref{Type: TicketType, Record: tu})
	if err != nil || !ok {
		t.Fatalf("no remote ticket recorded for the pushed record (%v)", err)
	}
	rec := g.record(t, TicketType, tu)
	if rec.Get("status") != "new" || rec.Get("queue") != q || rec.Get("created") == "" {
		t.Fatalf("the record did not take what RT assigned: %+v", rec.Props)
	}
	if rep := g.pull(t); rep.Integrated != 0 {
		t.Fatalf("the pull after creating %s integrated %d changesets, want 0", remote, rep.Integrated)
	}
	// A second push changes nothing.
	if rep := g.push(t); rep.Queued != 0 || rep.Completed != 0 {
		t.Fatalf("second push: %+v", rep)
	}
	g.Verify(t)
}

// The first state of a ticket, computed for a page of the feed at once
// (prefetch), equals the one computed ticket by ticket from its history
// (stateAt): every gateway makes the same changeset either way.
func TestPrefetchEqualsStateAt(t *testing.T) {
	s := rtServer(t)
	q := s.queue(t)
	a := s.createTicket(t, q, "first subject", "body", "erin@example.com")
	b := s.createTicket(t, q, "other", "", "")
	s.set(t, a, map[string]any{"Subject": "second subject", "Status": "open", "Priority": 4, "Owner": "root"})
	s.set(t, a, map[string]any{"Requestor": []string{"erin@example.com", "frank@example.com"}})
	s.set(t, b, map[string]any{"Status": "stalled"})
	g := s.gateway(t, filepath.Join(t.TempDir(), "g"), s.address(q))
	ctx := context.Background()
	var pg page[txn]
	qv := url.Values{"query": {g.gw.feedQuery(0)}, "orderby": {"id"}, "order": {"ASC"}, "per_page": {"100"}, "fields": {txnFields}}
	if _, err := g.gw.c.do(ctx, "GET", "/transactions", qv, nil, nil, &pg); err != nil {
		t.Fatal(err)
	}
	p := &puller{g: g.gw, st: g.F.State(), snaps: map[string]map[string]string{}, refs: map[string]foreign.Ref{}, initial: map[initialKey]map[string]string{}}
	if err := p.prefetch(ctx, pg.Items); err != nil {
		t.Fatal(err)
	}
	if len(p.initial) != 2 {
		t.Fatalf("prefetch found %d new tickets, want 2", len(p.initial))
	}
	for k, pre := range p.initial {
		var at *txn
		for i := range pg.Items {
			if string(pg.Items[i].ID) == k.txn {
				at = &pg.Items[i]
			}
		}
		want, err := g.gw.stateAt(ctx, k.ticket, at)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(pre) != fmt.Sprint(want) {
			t.Errorf("ticket %s: prefetch %v, stateAt %v", k.ticket, pre, want)
		}
		if k.ticket == a && (pre["subject"] != "first subject" || pre["requestors"] != "erin@example.com" || pre["status"] != "new" || pre["owner"] != "Nobody") {
			t.Errorf("ticket %s's first state: %v", a, pre)
		}
	}
}

// A ticket moved in RT to a queue this foreign replica does not sync: an
// edit of it here is not pushed, and its op says why (disabled).
func TestPushMovedTicketDisabled(t *testing.T) {
	s := rtServer(t)
	q, other := s.queue(t), s.queue(t)
	id := s.createTicket(t, q, "will move", "", "")
	g := s.gateway(t, filepath.Join(t.TempDir(), "g"), s.address(q))
	g.pull(t)
	s.set(t, id, map[string]any{"Queue": other})
	ref := foreign.Ref{Type: TicketType, Record: g.gw.TicketOrigin(id)}
	g.Set(t, ref, map[string]string{"subject": "edited here"})
	rep, err := g.F.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Disabled != 1 || rep.Completed != 0 || rep.Errored != 0 {
		t.Fatalf("push of a moved ticket: %+v", rep)
	}
	if got := s.ticket(t, id).Subject; got != "will move" {
		t.Fatalf("RT's subject is %q: the push wrote to a ticket of another queue", got)
	}
	ops, err := g.F.State().Ops(&ref)
	if err != nil {
		t.Fatal(err)
	}
	last := ops[len(ops)-1]
	if last.State != foreign.Disabled || !strings.Contains(last.Reason, other) {
		t.Fatalf("the op: %s %q", last.State, last.Reason)
	}
}

// Comments across two gateway replicas: one posts a comment; the other,
// which got the comment record by a native sync and never pulled RT since,
// pushes and posts nothing (the marker shows it is there). An edit of a
// comment is refused (RT cannot edit comments) and posts nothing either.
func TestCommentsTwoGateways(t *testing.T) {
	s := rtServer(t)
	q := s.queue(t)
	id := s.createTicket(t, q, "with comments", "first message", "")
	g1 := s.gateway(t, filepath.Join(t.TempDir(), "one"), s.address(q))
	gw2, err := New(Config{Address: s.address(q), Credentials: s.cred})
	if err != nil {
		t.Fatal(err)
	}
	g2 := &gateway{Gateway: foreigntest.OpenIn(t, filepath.Join(t.TempDir(), "two"), g1.Local.R.DatabaseUUID(), gw2), gw: gw2}
	g1.pull(t)
	g2.pull(t)
	tu := g1.gw.TicketOrigin(id)
	c := g1.Create(t, CommentType, map[string]string{"ticket": tu.String(), "body": "from one", "kind": "comment"})
	if rep := g1.push(t); rep.Completed != 1 {
		t.Fatalf("push from one: %+v", rep)
	}
	foreigntest.Sync(t, g1.Gateway, g2.Gateway)
	if rep := g2.push(t); rep.Completed != 1 {
		t.Fatalf("push from two: %+v", rep)
	}
	count := func() int {
		var pg page[txn]
		qv := url.Values{"query": {fmt.Sprintf("ObjectType = 'RT::Ticket' AND ObjectId = %s AND Type = 'Comment'", id)}}
		if _, err := s.c.do(context.Background(), "GET", "/transactions", qv, nil, nil, &pg); err != nil {
			t.Fatal(err)
		}
		return int(pg.Total)
	}
	if n := count(); n != 1 {
		t.Fatalf("RT holds %d comments, want 1", n)
	}
	// Pull on two: the comment comes as the same record, nothing new.
	g2.pull(t)
	foreigntest.Sync(t, g1.Gateway, g2.Gateway)
	if n := g2.Count(t, CommentType); n != 2 {
		t.Fatalf("two holds %d comments, want 2 (the first message and ours)", n)
	}
	// Editing a comment: refused, and nothing posted.
	g1.Set(t, c, map[string]string{"body": "edited"})
	rep, err := g1.F.Push(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errored != 1 || !strings.Contains(fmt.Sprint(rep.Errors), "cannot edit") {
		t.Fatalf("push of an edited comment: %+v", rep)
	}
	if n := count(); n != 1 {
		t.Fatalf("RT holds %d comments after the edit, want 1", n)
	}
	g1.Verify(t)
	g2.Verify(t)
}

// An RT edit right after our push (RT stamps it to the second, older than
// the push's report here) still reaches the record: the pull brings the
// record level with RT where a stamp kept the change from taking effect.
func TestPullAfterPushSameSecond(t *testing.T) {
	s := rtServer(t)
	q := s.queue(t)
	id := s.createTicket(t, q, "start", "", "")
	g := s.gateway(t, filepath.Join(t.TempDir(), "g"), s.address(q))
	g.pull(t)
	ref := foreign.Ref{Type: TicketType, Record: g.gw.TicketOrigin(id)}
	for i := range 3 {
		g.Set(t, ref, map[string]string{"subject": fmt.Sprintf("ours %d", i)})
		g.push(t)
		s.set(t, id, map[string]any{"Subject": fmt.Sprintf("theirs %d", i)})
		g.pull(t)
		if got := g.Get(t, ref).Get("subject"); got != fmt.Sprintf("theirs %d", i) {
			t.Fatalf("round %d: subject %q after pulling RT's edit", i, got)
		}
	}
	g.Verify(t)
}
