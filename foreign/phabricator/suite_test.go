package phabricator

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/foreigntest"
	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
)

// fakeRemote is a fake Phorge of its own: the gateway's user ("bot", whose
// token the gateway has) reviews what a person ("alice") puts up. Its
// clock moves a second with each thing a person does there, as time
// passes between people's actions.
type fakeRemote struct {
	srv   *conduitfake.Server
	clock *conduitfake.ManualClock
	url   string
	bot   conduitfake.User
	alice conduitfake.User
}

func newFakeRemote(t testing.TB) *fakeRemote {
	// The server's clock starts at this machine's (a push looks for what
	// it made since the record was made here).
	clock := conduitfake.NewManualClock(time.Now().Truncate(time.Second))
	srv := conduitfake.New(conduitfake.Options{Clock: clock.Now})
	r := &fakeRemote{srv: srv, clock: clock, url: srv.Start()}
	t.Cleanup(srv.Close)
	r.bot = srv.AddUser("bot")
	r.alice = srv.AddUser("alice")
	return r
}

func (r *fakeRemote) address() string { return "phab:" + r.url }

func (r *fakeRemote) gateway(t testing.TB, rt http.RoundTripper, cfg Config) *Gateway {
	t.Helper()
	cfg.Address = orDefault(cfg.Address, r.address())
	cfg.Token = orDefault(cfg.Token, r.bot.Token)
	cfg.Transport = ticker{r.clock, rt}
	cfg.Clock = r.clock.Now
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// ticker moves the server's clock a second before each request: time
// passes between a pull and the next, as it does for real.
type ticker struct {
	clock *conduitfake.ManualClock
	next  http.RoundTripper
}

func (t ticker) RoundTrip(r *http.Request) (*http.Response, error) {
	t.clock.Advance(time.Second)
	if t.next == nil {
		return http.DefaultTransport.RoundTrip(r)
	}
	return t.next.RoundTrip(r)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (r *fakeRemote) Gateway(t testing.TB, rt http.RoundTripper) foreign.Gateway {
	return r.gateway(t, rt, Config{})
}

// revision puts up a revision by alice with the bot as reviewer.
func (r *fakeRemote) revision(t testing.TB, title string) conduitfake.Revision {
	t.Helper()
	r.clock.Advance(time.Second)
	rev, err := r.srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: r.alice.PHID, Title: title, Reviewers: []string{r.bot.PHID}})
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func (r *fakeRemote) Create(t testing.TB, title string) string { return r.revision(t, title).PHID }

func (r *fakeRemote) SetTitle(t testing.TB, key, title string) {
	r.clock.Advance(time.Second)
	if _, err := r.srv.SetTitle(key, r.alice.PHID, title); err != nil {
		t.Fatal(err)
	}
}

func (r *fakeRemote) Title(t testing.TB, key string) string {
	rev, ok := r.srv.Revision(key)
	if !ok {
		t.Fatalf("no revision %s", key)
	}
	return rev.Title
}

func (r *fakeRemote) Count(t testing.TB) int { return len(r.srv.Revisions()) }

const testPatch = "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"

func TestConformance(t *testing.T) {
	foreigntest.Run(t, foreigntest.Kit{
		NewRemote: func(t testing.TB) foreigntest.Remote { return newFakeRemote(t) },
		Type:      RevisionType,
		Title:     "title",
		Writes: func(r *http.Request) bool {
			return strings.HasSuffix(r.URL.Path, "/api/differential.revision.edit")
		},
		Props: map[string]string{"patch": testPatch},
	})
}
