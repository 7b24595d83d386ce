package github

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/github/githubfake"
)

const secret = "s3cret"

// hookRig is a fake GitHub whose webhooks go to a Webhooks handler on a
// gateway replica that has pulled the repository once.
type hookRig struct {
	srv   *githubfake.Server
	owner string
	repo  string
	g     *foreigntest.Gateway
	hooks *httptest.Server
	addr  string
}

// tick is a clock that moves a second per reading, so that every edit has
// its own updated_at.
func tick() func() time.Time {
	var mu sync.Mutex
	t := time.Now().Truncate(time.Second)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func newHookRig(t *testing.T) *hookRig {
	h := &Webhooks{Secret: []byte(secret)}
	hooks := httptest.NewServer(h)
	t.Cleanup(hooks.Close)
	srv := githubfake.New(githubfake.Options{TB: t, Checker: checker(t), Clock: tick(), WebhookURL: hooks.URL + WebhookPath, WebhookSecret: secret})
	t.Cleanup(srv.Close)
	srv.AddToken(testToken, testUser)
	r := &hookRig{srv: srv, owner: "acme", repo: fmt.Sprintf("hooks%d", repoN.Add(1)), hooks: hooks}
	srv.AddRepo(r.owner, r.repo)
	r.addr = "github:" + r.owner + "/" + r.repo + "?api=" + srv.URL()
	gw, err := New(Config{Address: r.addr, Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	r.g = foreigntest.Open(t, filepath.Join(t.TempDir(), "g"), gw)
	foreigntest.Pull(t, r.g.F, nil) // the repository is synced here
	r.g.F.Close()                   // the handler opens it per delivery
	h.Local = r.g.Local
	h.Open = func(addr string) (*foreign.Foreign, error) {
		gw, err := New(Config{Address: addr, Token: testToken})
		if err != nil {
			return nil, err
		}
		return foreign.Open(r.g.Local, gw, nil)
	}
	return r
}

// ops reads the foreign replica's audit trail.
func (r *hookRig) ops(t *testing.T) []*foreign.Op {
	t.Helper()
	gw, _ := New(Config{Address: r.addr, Token: testToken})
	f, err := foreign.Open(r.g.Local, gw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ops, err := f.State().Ops(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ops
}

func (r *hookRig) title(t *testing.T, number int) string {
	t.Helper()
	gw, _ := New(Config{Address: r.addr, Token: testToken})
	f, err := foreign.Open(r.g.Local, gw, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return r.g.Get(t, foreigntest.RecordOf(t, f, fmt.Sprintf("issue/%d", number))).Get("title")
}

func TestWebhooks(t *testing.T) {
	r := newHookRig(t)
	is, err := r.srv.CreateIssue(r.owner, r.repo, person, githubfake.Issue{Title: "by webhook"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.srv.DeliverAll(); err != nil {
		t.Fatal(err)
	}
	if got := r.title(t, is.Number); got != "by webhook" {
		t.Fatalf("title %q after the opened event", got)
	}

	// A redelivery is a duplicate, and changes nothing.
	first := r.srv.Deliveries()[0]
	if err := r.srv.Redeliver(first.ID); err != nil {
		t.Fatal(err)
	}
	ops := r.ops(t)
	last := ops[len(ops)-1]
	if last.State != foreign.Duplicate || last.By == 0 {
		t.Fatalf("the redelivery's op: %s by %d", last.State, last.By)
	}

	// Out of order: v3 arrives before v2; v2 is dropped, v3 stays.
	for _, title := range []string{"v2", "v3"} {
		if err := r.srv.EditIssue(r.owner, r.repo, is.Number, func(i *githubfake.Issue) { i.Title = title }); err != nil {
			t.Fatal(err)
		}
	}
	p := r.srv.Pending()
	if len(p) != 2 {
		t.Fatalf("%d pending deliveries, want 2", len(p))
	}
	if err := r.srv.DeliverInOrder([]string{p[1].ID, p[0].ID}); err != nil {
		t.Fatal(err)
	}
	if got := r.title(t, is.Number); got != "v3" {
		t.Fatalf("title %q after out-of-order events, want v3", got)
	}
	ops = r.ops(t)
	if st := ops[len(ops)-1].State; st != foreign.Dropped {
		t.Fatalf("the late older event's op is %s, want dropped", st)
	}

	// A comment by webhook.
	if _, err := r.srv.AddComment(r.owner, r.repo, is.Number, person, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := r.srv.DeliverAll(); err != nil {
		t.Fatal(err)
	}
	if n := r.g.Count(t, CommentType); n != 1 {
		t.Fatalf("%d comments after the issue_comment event", n)
	}
	r.g.Verify(t)
}

func TestWebhookBadSignature(t *testing.T) {
	r := newHookRig(t)
	if _, err := r.srv.CreateIssue(r.owner, r.repo, person, githubfake.Issue{Title: "x"}); err != nil {
		t.Fatal(err)
	}
	d := r.srv.Pending()[0]
	for name, sig := range map[string]string{"wrong": "sha256=" + fmt.Sprintf("%064x", 0), "missing": ""} {
		req, _ := http.NewRequest(http.MethodPost, r.hooks.URL+WebhookPath, bytes.NewReader(d.Body))
		req.Header.Set("X-GitHub-Event", d.Event)
		req.Header.Set("X-GitHub-Delivery", d.ID)
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s signature: %s, want 401", name, resp.Status)
		}
	}
	if n := r.g.Count(t, IssueType); n != 0 {
		t.Fatalf("%d issues after refused deliveries", n)
	}
}
