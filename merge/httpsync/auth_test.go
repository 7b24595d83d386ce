package httpsync_test

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
)

func newToken(t *testing.T) string {
	t.Helper()
	tok, err := httpsync.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func withToken(tok string) *httpsync.ClientOptions {
	o := *fast
	o.Token = tok
	return &o
}

// wantStatus requires err to be an *httpsync.Error with status code.
func wantStatus(t *testing.T, err error, code int, what string) {
	t.Helper()
	var he *httpsync.Error
	if !errors.As(err, &he) || he.Status != code {
		t.Fatalf("%s: got %v, want an answer %d", what, err, code)
	}
}

func TestTokens(t *testing.T) {
	db := uuid.New()
	a := newLocal(t, db)
	commit(t, a, 3)
	readTok, writeTok := newToken(t), newToken(t)
	if !strings.HasPrefix(readTok, "pt_") || readTok == writeTok || len(readTok) != 3+43 {
		t.Fatalf("tokens %q %q", readTok, writeTok)
	}
	var set atomic.Pointer[httpsync.TokenSet]
	set.Store(httpsync.NewTokenSet([]httpsync.TokenHash{
		{Hash: httpsync.HashToken(readTok), Scope: httpsync.ScopeRead},
		{Hash: httpsync.HashToken(writeTok), Scope: httpsync.ScopeWrite},
	}))
	srv := serve(t, a, &httpsync.HandlerOptions{Auth: func(tok string) (httpsync.Scope, bool) { return set.Load().Check(tok) }}, nil)

	// No token, a wrong one: 401 with WWW-Authenticate, on every /v1
	// endpoint; /healthz needs none.
	_, err := httpsync.Dial(ctx, srv.URL, fast)
	wantStatus(t, err, http.StatusUnauthorized, "no token")
	_, err = httpsync.Dial(ctx, srv.URL, withToken(newToken(t)))
	wantStatus(t, err, http.StatusUnauthorized, "a wrong token")
	_, err = httpsync.Dial(ctx, srv.URL, withToken(readTok+"x"))
	wantStatus(t, err, http.StatusUnauthorized, "a token with more")
	for _, ep := range []struct{ method, path string }{
		{"GET", "/v1/info"}, {"GET", "/v1/tickets"}, {"POST", "/v1/changesets"},
		{"POST", "/v1/resolutions"}, {"POST", "/v1/push"}, {"GET", "/v1/snapshot"}, {"GET", "/v1/nothing"},
	} {
		req, _ := http.NewRequest(ep.method, srv.URL+ep.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer nope")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s with a wrong token: %d, WWW-Authenticate %q, %s", ep.method, ep.path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz without a token: %d", resp.StatusCode)
	}

	// A read token pulls and clones, and cannot push (403).
	b := newLocal(t, db)
	r, err := httpsync.Dial(ctx, srv.URL, withToken(readTok))
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := merge.Pull(ctx, r, b, nil); err != nil || rep.Integrated != 3 {
		t.Fatalf("pull with a read token: %+v %v", rep, err)
	}
	if _, err := r.Snapshot(ctx, t.TempDir()+"/snap"); err != nil {
		t.Fatalf("snapshot with a read token: %v", err)
	}
	commit(t, b, 2)
	_, err = httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: withToken(readTok)})
	wantStatus(t, err, http.StatusForbidden, "push with a read token")
	if got := a.R.LatestSeq(); got != 3 {
		t.Fatalf("a refused push changed the server: latest %d", got)
	}
	_, err = httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: fast})
	wantStatus(t, err, http.StatusUnauthorized, "push with no token")

	// A write token pushes.
	rep, err := httpsync.Push(ctx, b, srv.URL, &httpsync.PushOptions{Client: withToken(writeTok)})
	if err != nil || rep.Integrated != 2 {
		t.Fatalf("push with a write token: %+v %v", rep, err)
	}

	// Revoked: the write token is refused from then on.
	set.Store(httpsync.NewTokenSet([]httpsync.TokenHash{{Hash: httpsync.HashToken(readTok), Scope: httpsync.ScopeRead}}))
	_, err = httpsync.Dial(ctx, srv.URL, withToken(writeTok))
	wantStatus(t, err, http.StatusUnauthorized, "a revoked token")
	if _, err := httpsync.Dial(ctx, srv.URL, withToken(readTok)); err != nil {
		t.Fatalf("the token left: %v", err)
	}
	verify(t, a, b)
}

// Without Auth, no token is needed.
func TestNoAuth(t *testing.T) {
	a := newLocal(t, uuid.New())
	srv := serve(t, a, nil, nil)
	if _, err := httpsync.Dial(ctx, srv.URL, fast); err != nil {
		t.Fatal(err)
	}
}

func TestTokenSetCheck(t *testing.T) {
	toks := make([]string, 4)
	var hs []httpsync.TokenHash
	for i := range toks {
		toks[i] = newToken(t)
		hs = append(hs, httpsync.TokenHash{Hash: httpsync.HashToken(toks[i]), Scope: httpsync.Scope(1 + i%2)})
	}
	s := httpsync.NewTokenSet(hs)
	for i, tok := range toks {
		if sc, ok := s.Check(tok); !ok || sc != httpsync.Scope(1+i%2) {
			t.Errorf("token %d: %v %v", i, sc, ok)
		}
	}
	for _, tok := range []string{"", "pt_", toks[0][:len(toks[0])-1], newToken(t)} {
		if sc, ok := s.Check(tok); ok || sc != 0 {
			t.Errorf("%q: %v %v", tok, sc, ok)
		}
	}
	if _, ok := httpsync.NewTokenSet(nil).Check(toks[0]); ok {
		t.Error("an empty set took a token")
	}
}
