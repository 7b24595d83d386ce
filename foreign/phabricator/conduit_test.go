package phabricator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prophet-sync/prophet/foreign/phabricator/conduitfake"
)

// A Conduit endpoint answering by the method, in Conduit's envelope.
func conduit(t *testing.T, answers map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(r.PostForm.Get("params")), &p); err != nil {
			t.Errorf("params are not JSON: %v", err)
		}
		if tok := p["__conduit__"].(map[string]any)["token"]; tok != "api-good" {
			w.Write([]byte(`{"result":null,"error_code":"ERR-INVALID-AUTH","error_info":"API token \"x\" has the wrong length."}`))
			return
		}
		a, ok := answers[strings.TrimPrefix(r.URL.Path, "/api/")+"?"+afterOf(p)]
		if !ok {
			w.Write([]byte(`{"result":null,"error_code":"ERR-CONDUIT-CALL","error_info":"Conduit method \"` + strings.TrimPrefix(r.URL.Path, "/api/") + `\" does not exist."}`))
			return
		}
		w.Write([]byte(a))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func afterOf(p map[string]any) string {
	if a, ok := p["after"].(string); ok {
		return a
	}
	return ""
}

func TestCallAndSearch(t *testing.T) {
	srv := conduit(t, map[string]string{
		"user.whoami?":                   `{"result":{"phid":"PHID-USER-1","userName":"alice"},"error_code":null,"error_info":null}`,
		"differential.revision.search?":  `{"result":{"data":[{"id":1},{"id":2}],"cursor":{"limit":2,"after":"2"}},"error_code":null,"error_info":null}`,
		"differential.revision.search?2": `{"result":{"data":[{"id":3}],"cursor":{"limit":2,"after":null}},"error_code":null,"error_info":null}`,
	})
	c := NewClient(srv.URL, "api-good", nil)
	var me struct {
		PHID     string `json:"phid"`
		UserName string `json:"userName"`
	}
	if err := c.Call(context.Background(), "user.whoami", nil, &me); err != nil || me.UserName != "alice" {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	var ids []int
	err := Search(context.Background(), c, "differential.revision.search", nil, func(r struct {
		ID int `json:"id"`
	}) error {
		ids = append(ids, r.ID)
		return nil
	})
	if err != nil || len(ids) != 3 || ids[2] != 3 {
		t.Fatalf("search: %v %v", ids, err)
	}
	if c.Calls()["differential.revision.search"] != 2 {
		t.Fatalf("calls: %v", c.Calls())
	}
}

func TestConduitErrors(t *testing.T) {
	srv := conduit(t, nil)
	bad := NewClient(srv.URL, "api-bad", nil)
	err := bad.Call(context.Background(), "user.whoami", nil, nil)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "PROPHET_PHABRICATOR_TOKEN") {
		t.Fatalf("bad token: %v", err)
	}
	old := NewClient(srv.URL, "api-good", nil)
	err = old.Call(context.Background(), "differential.revision.search", nil, nil)
	var ce *Error
	if !errors.As(err, &ce) || !ce.Unknown() || !strings.Contains(err.Error(), "too old") {
		t.Fatalf("unknown method: %v", err)
	}
	down := NewClient("http://127.0.0.1:1", "api-good", nil)
	if err := down.Call(context.Background(), "user.whoami", nil, nil); err == nil || !strings.Contains(err.Error(), "cannot reach Phabricator") {
		t.Fatalf("server down: %v", err)
	}
}

// The client against the fake Conduit: whoami, a refused token, an old
// server, and a search paged over equal dateModified.
func TestClientAgainstFake(t *testing.T) {
	srv := conduitfake.New(conduitfake.Options{})
	url := srv.Start()
	t.Cleanup(srv.Close)
	alice := srv.AddUser("alice")
	c := NewClient(url, alice.Token, nil)
	var me struct {
		PHID string `json:"phid"`
	}
	if err := c.Call(context.Background(), "user.whoami", nil, &me); err != nil || me.PHID != alice.PHID {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	for i := range 5 {
		if _, err := srv.CreateRevision(conduitfake.RevisionSpec{AuthorPHID: alice.PHID, Title: fmt.Sprintf("D%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	err := Search(context.Background(), c, "differential.revision.search", map[string]any{"order": "updated", "limit": 2}, func(json.RawMessage) error { n++; return nil })
	if err != nil || n != 5 {
		t.Fatalf("search: %d results, %v", n, err)
	}
	srv.DisableMethod("differential.revision.search")
	err = c.Call(context.Background(), "differential.revision.search", nil, nil)
	var ce *Error
	if !errors.As(err, &ce) || !ce.Unknown() {
		t.Fatalf("an old server: %v", err)
	}
	if err := NewClient(url, "api-nope", nil).Call(context.Background(), "user.whoami", nil, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("bad token: %v", err)
	}
}
