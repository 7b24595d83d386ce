package conduitfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// client is a minimal Conduit client as a real consumer would write it.
type client struct {
	t     *testing.T
	base  string
	token string
}

type response struct {
	Result    json.RawMessage `json:"result"`
	ErrorCode *string         `json:"error_code"`
	ErrorInfo *string         `json:"error_info"`
}

// raw performs one call and returns the decoded envelope.
func (c client) raw(method string, params map[string]any) response {
	c.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["__conduit__"] = map[string]any{"token": c.token}
	js, err := json.Marshal(params)
	if err != nil {
		c.t.Fatal(err)
	}
	form := url.Values{"params": {string(js)}, "output": {"json"}, "__conduit__": {"1"}}
	return c.post(method, form)
}

func (c client) post(method string, form url.Values) response {
	c.t.Helper()
	resp, err := http.PostForm(c.base+"/api/"+method, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("%s: HTTP %d", method, resp.StatusCode)
	}
	var r response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		c.t.Fatalf("%s: decode: %v", method, err)
	}
	return r
}

// call performs a call that must succeed and decodes its result into out.
func (c client) call(method string, params map[string]any, out any) {
	c.t.Helper()
	r := c.raw(method, params)
	if r.ErrorCode != nil {
		c.t.Fatalf("%s: %s: %s", method, *r.ErrorCode, deref(r.ErrorInfo))
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		c.t.Fatalf("%s: decode result: %v", method, err)
	}
}

// callErr performs a call that must fail and returns its error code and info.
func (c client) callErr(method string, params map[string]any) (string, string) {
	c.t.Helper()
	r := c.raw(method, params)
	if r.ErrorCode == nil {
		c.t.Fatalf("%s: unexpected success: %s", method, r.Result)
	}
	if string(r.Result) != "null" {
		c.t.Errorf("%s: result = %s on error, want null", method, r.Result)
	}
	return *r.ErrorCode, deref(r.ErrorInfo)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

type revResult struct {
	Data []struct {
		ID     int    `json:"id"`
		Type   string `json:"type"`
		PHID   string `json:"phid"`
		Fields struct {
			Title   string `json:"title"`
			Summary string `json:"summary"`
			Status  struct {
				Value string `json:"value"`
				Name  string `json:"name"`
			} `json:"status"`
			AuthorPHID     string `json:"authorPHID"`
			RepositoryPHID string `json:"repositoryPHID"`
			DiffPHID       string `json:"diffPHID"`
			DateCreated    int64  `json:"dateCreated"`
			DateModified   int64  `json:"dateModified"`
			Policy         map[string]string
		} `json:"fields"`
		Attachments struct {
			Reviewers *struct {
				Reviewers []struct {
					ReviewerPHID string `json:"reviewerPHID"`
					Status       string `json:"status"`
					IsBlocking   bool   `json:"isBlocking"`
				} `json:"reviewers"`
			} `json:"reviewers"`
			Subscribers *struct {
				SubscriberPHIDs []string `json:"subscriberPHIDs"`
				SubscriberCount int      `json:"subscriberCount"`
			} `json:"subscribers"`
			Projects *struct {
				ProjectPHIDs []string `json:"projectPHIDs"`
			} `json:"projects"`
		} `json:"attachments"`
	} `json:"data"`
	Query  map[string]any `json:"query"`
	Cursor struct {
		Limit int     `json:"limit"`
		After *string `json:"after"`
		Order any     `json:"order"`
	} `json:"cursor"`
}

func (r revResult) ids() []int {
	var out []int
	for _, d := range r.Data {
		out = append(out, d.ID)
	}
	return out
}

type xactResult struct {
	Data []struct {
		ID           int    `json:"id"`
		PHID         string `json:"phid"`
		Type         string `json:"type"`
		AuthorPHID   string `json:"authorPHID"`
		ObjectPHID   string `json:"objectPHID"`
		DateCreated  int64  `json:"dateCreated"`
		DateModified int64  `json:"dateModified"`
		Comments     []struct {
			ID           int    `json:"id"`
			PHID         string `json:"phid"`
			Version      int    `json:"version"`
			AuthorPHID   string `json:"authorPHID"`
			DateCreated  int64  `json:"dateCreated"`
			DateModified int64  `json:"dateModified"`
			Removed      bool   `json:"removed"`
			Content      struct {
				Raw string `json:"raw"`
			} `json:"content"`
		} `json:"comments"`
		Fields map[string]any `json:"fields"`
	} `json:"data"`
	Cursor struct {
		Limit int     `json:"limit"`
		After *string `json:"after"`
	} `json:"cursor"`
}

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	srv        *Server
	clock      *ManualClock
	alice, bob User
	carol      User
	c          client // authenticated as alice
	proj       Project
	repo       Repository
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	clk := NewManualClock(epoch)
	s := New(Options{Clock: clk.Now})
	base := s.Start()
	t.Cleanup(s.Close)
	f := &fixture{srv: s, clock: clk}
	f.alice, f.bob, f.carol = s.AddUser("alice"), s.AddUser("bob"), s.AddUser("carol")
	f.proj = s.AddProject("Sync Team")
	f.repo = s.AddRepository("prophet", "PRO")
	f.c = client{t: t, base: base, token: f.alice.Token}
	return f
}

func (f *fixture) revision(t *testing.T, author User, title string, reviewers ...User) Revision {
	t.Helper()
	spec := RevisionSpec{
		AuthorPHID: author.PHID, Title: title, Summary: "summary of " + title,
		RepositoryPHID: f.repo.PHID, CommitMessage: title + "\n\nbody",
	}
	for _, r := range reviewers {
		spec.Reviewers = append(spec.Reviewers, r.PHID)
	}
	r, err := f.srv.CreateRevision(spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWhoAmI(t *testing.T) {
	f := newFixture(t)
	var who struct {
		PHID     string `json:"phid"`
		UserName string `json:"userName"`
	}
	f.c.call("user.whoami", nil, &who)
	if who.PHID != f.alice.PHID || who.UserName != "alice" {
		t.Errorf("whoami = %+v, want alice %s", who, f.alice.PHID)
	}
	bobClient := f.c
	bobClient.token = f.bob.Token
	bobClient.call("user.whoami", nil, &who)
	if who.PHID != f.bob.PHID {
		t.Errorf("whoami as bob = %s", who.PHID)
	}

	// Plain form fields, with the token in api.token.
	r := f.c.post("user.whoami", url.Values{"api.token": {f.carol.Token}, "output": {"json"}})
	if r.ErrorCode != nil || !strings.Contains(string(r.Result), f.carol.PHID) {
		t.Errorf("form whoami = %s %v", r.Result, deref(r.ErrorCode))
	}
}

func TestUserAndProjectSearch(t *testing.T) {
	f := newFixture(t)
	var res struct {
		Data []struct {
			PHID   string         `json:"phid"`
			Type   string         `json:"type"`
			Fields map[string]any `json:"fields"`
		} `json:"data"`
	}
	f.c.call("user.search", map[string]any{"constraints": map[string]any{"phids": []string{f.bob.PHID, f.carol.PHID}}}, &res)
	if len(res.Data) != 2 || res.Data[0].Fields["username"] != "carol" || res.Data[1].Type != "USER" {
		t.Errorf("user.search = %+v", res.Data)
	}
	f.c.call("project.search", map[string]any{"constraints": map[string]any{"phids": []string{f.proj.PHID}}}, &res)
	if len(res.Data) != 1 || res.Data[0].Fields["name"] != "Sync Team" || res.Data[0].Type != "PROJ" {
		t.Errorf("project.search = %+v", res.Data)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	bad := f.c
	bad.token = "api-nope"
	if code, _ := bad.callErr("user.whoami", nil); code != "ERR-INVALID-AUTH" {
		t.Errorf("bad token: code %q", code)
	}
	bad.token = ""
	if code, _ := bad.callErr("user.whoami", nil); code != "ERR-INVALID-AUTH" {
		t.Errorf("no token: code %q", code)
	}
	code, info := f.c.callErr("x.y", nil)
	if code != "ERR-CONDUIT-CALL" || info != `Conduit method "x.y" does not exist.` {
		t.Errorf("unknown method: %q %q", code, info)
	}
	f.srv.DisableMethod("transaction.search")
	code, info = f.c.callErr("transaction.search", map[string]any{"objectIdentifier": "D1"})
	if code != "ERR-CONDUIT-CALL" || !strings.Contains(info, `"transaction.search" does not exist`) {
		t.Errorf("disabled method: %q %q", code, info)
	}
	f.srv.EnableMethod("transaction.search")
	f.revision(t, f.alice, "one")
	var xr xactResult
	f.c.call("transaction.search", map[string]any{"objectIdentifier": "D1"}, &xr)

	code, _ = f.c.callErr("differential.revision.search", map[string]any{"constraints": map[string]any{"bogus": 1}})
	if code != "ERR-CONDUIT-CORE" {
		t.Errorf("bad constraint: %q", code)
	}
	code, _ = f.c.callErr("differential.revision.search", map[string]any{"limit": 101})
	if code != "ERR-CONDUIT-CORE" {
		t.Errorf("limit 101: %q", code)
	}
}

func TestRevisionSearchConstraints(t *testing.T) {
	f := newFixture(t)
	r1 := f.revision(t, f.alice, "alice's", f.bob)
	f.clock.Advance(10 * time.Second)
	r2 := f.revision(t, f.bob, "bob's", f.carol)
	f.clock.Advance(10 * time.Second)
	r3 := f.revision(t, f.carol, "carol's")

	search := func(c map[string]any) []int {
		t.Helper()
		var res revResult
		f.c.call("differential.revision.search", map[string]any{"constraints": c, "order": "updated"}, &res)
		return res.ids()
	}
	check := func(name string, got []int, want ...int) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: ids %v, want %v", name, got, want)
		}
	}
	check("none", search(map[string]any{}), 3, 2, 1)
	check("responsible bob", search(map[string]any{"responsiblePHIDs": []string{f.bob.PHID}}), r2.ID, r1.ID)
	check("responsible carol", search(map[string]any{"responsiblePHIDs": []string{f.carol.PHID}}), r3.ID, r2.ID)
	check("phids", search(map[string]any{"phids": []string{r1.PHID, r3.PHID}}), 3, 1)
	check("ids", search(map[string]any{"ids": []int{2}}), 2)
	check("modifiedStart inclusive", search(map[string]any{"modifiedStart": r2.DateModified}), 3, 2)
	check("modifiedEnd inclusive", search(map[string]any{"modifiedEnd": r2.DateModified}), 2, 1)
	check("modified range", search(map[string]any{"modifiedStart": r2.DateModified, "modifiedEnd": r2.DateModified}), 2)
	check("authorPHIDs", search(map[string]any{"authorPHIDs": []string{f.alice.PHID}}), 1)

	// A change moves a revision to the front of "updated" but not "newest".
	f.clock.Advance(time.Second)
	if _, err := f.srv.AddComment(r1.PHID, f.bob.PHID, "ping"); err != nil {
		t.Fatal(err)
	}
	check("updated after comment", search(nil), 1, 3, 2)
	var res revResult
	f.c.call("differential.revision.search", nil, &res)
	check("newest", res.ids(), 3, 2, 1)

	d := res.Data[2].Fields
	if d.Title != "alice's" || d.Summary != "summary of alice's" || d.Status.Value != "needs-review" ||
		d.Status.Name != "Needs Review" || d.AuthorPHID != f.alice.PHID || d.RepositoryPHID != f.repo.PHID ||
		d.DiffPHID != r1.DiffPHID || d.DateCreated != epoch.Unix() || d.DateModified != epoch.Unix()+21 ||
		d.Policy["view"] == "" {
		t.Errorf("fields = %+v", d)
	}
	if res.Data[2].Type != "DREV" || res.Data[2].PHID != r1.PHID || res.Query["queryKey"] != nil {
		t.Errorf("object = %+v", res.Data[2])
	}
}

func TestRevisionPagingEqualTimestamps(t *testing.T) {
	f := newFixture(t)
	// 5 revisions at distinct times, then 13 sharing one second, then 5 more.
	for i := range 23 {
		f.revision(t, f.alice, fmt.Sprint("r", i))
		if i < 5 || i >= 17 {
			f.clock.Advance(time.Second)
		}
	}
	for _, limit := range []int{1, 4, 7, 100} {
		var all []int
		var after any
		for page := 0; ; page++ {
			var res revResult
			f.c.call("differential.revision.search", map[string]any{
				"order": "updated", "limit": limit, "after": after,
			}, &res)
			if res.Cursor.Limit != limit || res.Cursor.Order != "updated" {
				t.Fatalf("cursor = %+v", res.Cursor)
			}
			all = append(all, res.ids()...)
			if res.Cursor.After == nil {
				break
			}
			after = *res.Cursor.After
			if page > 30 {
				t.Fatal("paging does not terminate")
			}
		}
		want := make([]int, 23)
		for i := range want {
			want[i] = 23 - i
		}
		if !slices.Equal(all, want) {
			t.Errorf("limit %d: ids %v, want %v", limit, all, want)
		}
	}

	// A bare id cursor (Phorge style) also works.
	var res revResult
	f.c.call("differential.revision.search", map[string]any{"order": "updated", "after": "10", "limit": 3}, &res)
	if !slices.Equal(res.ids(), []int{9, 8, 7}) {
		t.Errorf("bare id cursor: %v", res.ids())
	}
	// The default order pages by id.
	f.c.call("differential.revision.search", map[string]any{"limit": 2}, &res)
	if !slices.Equal(res.ids(), []int{23, 22}) || *res.Cursor.After != "22" {
		t.Errorf("newest page: %v after %v", res.ids(), *res.Cursor.After)
	}
}

func TestRevisionAttachments(t *testing.T) {
	f := newFixture(t)
	r, err := f.srv.CreateRevision(RevisionSpec{
		AuthorPHID: f.alice.PHID, Title: "t", Reviewers: []string{f.bob.PHID},
		BlockingReviewers: []string{f.carol.PHID}, Subscribers: []string{f.bob.PHID},
		Projects: []string{f.proj.PHID},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.SetStatus(r.PHID, f.bob.PHID, StatusAccepted); err != nil {
		t.Fatal(err)
	}
	var res revResult
	f.c.call("differential.revision.search", map[string]any{"attachments": map[string]any{}}, &res)
	a := res.Data[0].Attachments
	if a.Reviewers != nil || a.Subscribers != nil || a.Projects != nil {
		t.Errorf("unrequested attachments present: %+v", a)
	}
	f.c.call("differential.revision.search", map[string]any{
		"attachments": map[string]any{"reviewers": true, "subscribers": true, "projects": true},
	}, &res)
	a = res.Data[0].Attachments
	if a.Reviewers == nil || len(a.Reviewers.Reviewers) != 2 {
		t.Fatalf("reviewers = %+v", a.Reviewers)
	}
	rv := a.Reviewers.Reviewers
	if rv[0].ReviewerPHID != f.bob.PHID || rv[0].Status != "accepted" || rv[0].IsBlocking ||
		rv[1].ReviewerPHID != f.carol.PHID || rv[1].Status != "added" || !rv[1].IsBlocking {
		t.Errorf("reviewers = %+v", rv)
	}
	if a.Subscribers == nil || !slices.Equal(a.Subscribers.SubscriberPHIDs, []string{f.bob.PHID}) || a.Subscribers.SubscriberCount != 1 {
		t.Errorf("subscribers = %+v", a.Subscribers)
	}
	if a.Projects == nil || !slices.Equal(a.Projects.ProjectPHIDs, []string{f.proj.PHID}) {
		t.Errorf("projects = %+v", a.Projects)
	}
	if res.Data[0].Fields.Status.Value != StatusAccepted {
		t.Errorf("status = %+v", res.Data[0].Fields.Status)
	}
}

func TestDiffSearch(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.alice, "first")
	f.clock.Advance(time.Minute)
	d2, err := f.srv.UpdateDiff(r.PHID, f.alice.PHID, "second version\n\nDetails.")
	if err != nil {
		t.Fatal(err)
	}
	var rr revResult
	f.c.call("differential.revision.search", nil, &rr)
	if rr.Data[0].Fields.DiffPHID != d2.PHID || d2.PHID == r.DiffPHID {
		t.Errorf("diffPHID = %s, want new %s (old %s)", rr.Data[0].Fields.DiffPHID, d2.PHID, r.DiffPHID)
	}
	if rr.Data[0].Fields.DateModified != epoch.Unix()+60 {
		t.Errorf("dateModified not bumped by update: %d", rr.Data[0].Fields.DateModified)
	}

	var res struct {
		Data []struct {
			ID     int    `json:"id"`
			PHID   string `json:"phid"`
			Type   string `json:"type"`
			Fields struct {
				RevisionPHID string `json:"revisionPHID"`
				DateCreated  int64  `json:"dateCreated"`
				DateModified int64  `json:"dateModified"`
			} `json:"fields"`
			Attachments struct {
				Commits struct {
					Commits []struct {
						Identifier string `json:"identifier"`
						Message    string `json:"message"`
					} `json:"commits"`
				} `json:"commits"`
			} `json:"attachments"`
		} `json:"data"`
	}
	f.c.call("differential.diff.search", map[string]any{
		"constraints": map[string]any{"phids": []string{d2.PHID}},
		"attachments": map[string]any{"commits": true},
	}, &res)
	if len(res.Data) != 1 {
		t.Fatalf("diffs = %+v", res.Data)
	}
	d := res.Data[0]
	if d.Type != "DIFF" || d.Fields.RevisionPHID != r.PHID || d.Fields.DateCreated != epoch.Unix()+60 ||
		len(d.Attachments.Commits.Commits) != 1 || d.Attachments.Commits.Commits[0].Message != "second version\n\nDetails." ||
		d.Attachments.Commits.Commits[0].Identifier == "" {
		t.Errorf("diff = %+v", d)
	}
	f.c.call("differential.diff.search", map[string]any{
		"constraints": map[string]any{"revisionPHIDs": []string{r.PHID}},
		"attachments": map[string]any{"commits": true},
	}, &res)
	if len(res.Data) != 2 || res.Data[1].PHID != r.DiffPHID || res.Data[1].Attachments.Commits.Commits[0].Message != "first\n\nbody" {
		t.Errorf("diffs by revision = %+v", res.Data)
	}
}

func TestTransactionSearch(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.alice, "t", f.bob)
	var comments []Transaction
	for i := range 5 {
		f.clock.Advance(time.Second)
		x, err := f.srv.AddComment(r.PHID, f.bob.PHID, fmt.Sprint("comment ", i))
		if err != nil {
			t.Fatal(err)
		}
		comments = append(comments, x)
	}
	f.clock.Advance(time.Hour)
	if _, err := f.srv.EditComment(comments[1].PHID, "edited comment 1"); err != nil {
		t.Fatal(err)
	}

	// Page through everything, newest first, 3 at a time.
	var got []int
	var after any
	var all xactResult
	for {
		var res xactResult
		f.c.call("transaction.search", map[string]any{"objectIdentifier": "D1", "limit": 3, "after": after}, &res)
		got = append(got, idsOf(res)...)
		all.Data = append(all.Data, res.Data...)
		if res.Cursor.After == nil {
			break
		}
		after = *res.Cursor.After
	}
	if !slices.Equal(got, []int{7, 6, 5, 4, 3, 2, 1}) {
		t.Fatalf("transaction ids = %v", got)
	}
	types := []string{}
	for _, x := range all.Data {
		types = append(types, x.Type)
		if !strings.HasPrefix(x.PHID, "PHID-XACT-DREV-") || x.ObjectPHID != r.PHID {
			t.Errorf("transaction %+v", x)
		}
	}
	if !slices.Equal(types, []string{"comment", "comment", "comment", "comment", "comment", "update", "create"}) {
		t.Errorf("types = %v", types)
	}

	var res xactResult
	f.c.call("transaction.search", map[string]any{
		"objectIdentifier": r.PHID,
		"constraints":      map[string]any{"phids": []string{comments[1].PHID, comments[2].PHID}},
	}, &res)
	if len(res.Data) != 2 {
		t.Fatalf("by phid = %+v", res.Data)
	}
	edited, plain := res.Data[1], res.Data[0]
	if edited.PHID != comments[1].PHID || len(edited.Comments) != 1 {
		t.Fatalf("edited = %+v", edited)
	}
	c := edited.Comments[0]
	if c.Content.Raw != "edited comment 1" || c.Version != 2 || c.DateModified == c.DateCreated ||
		c.DateCreated != epoch.Unix()+2 || c.DateModified != epoch.Unix()+3605 || c.AuthorPHID != f.bob.PHID ||
		edited.AuthorPHID != f.bob.PHID || c.Removed {
		t.Errorf("edited comment = %+v", c)
	}
	if pc := plain.Comments[0]; pc.Version != 1 || pc.DateModified != pc.DateCreated || pc.Content.Raw != "comment 2" {
		t.Errorf("plain comment = %+v", pc)
	}
	// Editing does not bump the revision.
	if rev, _ := f.srv.Revision(r.PHID); rev.DateModified != epoch.Unix()+5 {
		t.Errorf("revision dateModified = %d after edit", rev.DateModified)
	}
}

func idsOf(r xactResult) []int {
	var out []int
	for _, d := range r.Data {
		out = append(out, d.ID)
	}
	return out
}

func TestRevisionEdit(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.bob, "t")
	f.clock.Advance(90 * time.Second)
	var out struct {
		Object struct {
			ID   int    `json:"id"`
			PHID string `json:"phid"`
		} `json:"object"`
		Transactions []struct {
			PHID string `json:"phid"`
		} `json:"transactions"`
	}
	f.c.call("differential.revision.edit", map[string]any{
		"objectIdentifier": "D1",
		"transactions":     []any{map[string]any{"type": "comment", "value": "hello from sync"}},
	}, &out)
	if out.Object.ID != r.ID || out.Object.PHID != r.PHID || len(out.Transactions) != 1 {
		t.Fatalf("edit result = %+v", out)
	}
	var res xactResult
	f.c.call("transaction.search", map[string]any{"objectIdentifier": r.PHID, "limit": 1}, &res)
	x := res.Data[0]
	if x.PHID != out.Transactions[0].PHID || x.Type != "comment" || x.AuthorPHID != f.alice.PHID ||
		x.Comments[0].Content.Raw != "hello from sync" || x.DateCreated != epoch.Unix()+90 {
		t.Errorf("new transaction = %+v", x)
	}
	var rr revResult
	f.c.call("differential.revision.search", map[string]any{"constraints": map[string]any{"ids": []int{1}}}, &rr)
	if rr.Data[0].Fields.DateModified != epoch.Unix()+90 {
		t.Errorf("dateModified = %d, want bumped", rr.Data[0].Fields.DateModified)
	}

	f.c.call("differential.revision.edit", map[string]any{
		"objectIdentifier": r.PHID,
		"transactions": []any{
			map[string]any{"type": "title", "value": "new title"},
			map[string]any{"type": "summary", "value": "new summary"},
		},
	}, &out)
	if len(out.Transactions) != 2 || out.Transactions[0].PHID == out.Transactions[1].PHID {
		t.Errorf("edit result = %+v", out)
	}
	if rev, _ := f.srv.Revision("D1"); rev.Title != "new title" || rev.Summary != "new summary" {
		t.Errorf("revision = %+v", rev)
	}
	code, _ := f.c.callErr("differential.revision.edit", map[string]any{
		"objectIdentifier": "D1",
		"transactions":     []any{map[string]any{"type": "bogus", "value": "x"}},
	})
	if code != "ERR-CONDUIT-CORE" {
		t.Errorf("bad transaction type: %q", code)
	}
}

func TestLag(t *testing.T) {
	f := newFixture(t)
	f.revision(t, f.alice, "old")
	f.clock.Advance(time.Minute)
	f.srv.Lag(30 * time.Second)
	r2 := f.revision(t, f.alice, "new")

	var res revResult
	f.c.call("differential.revision.search", map[string]any{"order": "updated"}, &res)
	if !slices.Equal(res.ids(), []int{1}) {
		t.Fatalf("lagging search = %v, want [1]", res.ids())
	}
	f.clock.Advance(29 * time.Second)
	f.c.call("differential.revision.search", map[string]any{"order": "updated"}, &res)
	if !slices.Equal(res.ids(), []int{1}) {
		t.Fatalf("still lagging = %v, want [1]", res.ids())
	}
	f.clock.Advance(time.Second)
	f.c.call("differential.revision.search", map[string]any{"order": "updated"}, &res)
	if !slices.Equal(res.ids(), []int{2, 1}) || res.Data[0].Fields.DateModified != r2.DateModified {
		t.Fatalf("after lag = %v", res.ids())
	}
	f.srv.Lag(0)
}

func TestFailNextAndCounters(t *testing.T) {
	f := newFixture(t)
	f.srv.FailNext(2, "ERR-RATE-LIMIT", "slow down")
	for range 2 {
		code, info := f.c.callErr("user.whoami", nil)
		if code != "ERR-RATE-LIMIT" || info != "slow down" {
			t.Errorf("injected error = %q %q", code, info)
		}
	}
	var who map[string]any
	f.c.call("user.whoami", nil, &who)
	f.c.callErr("nope.nope", nil)
	if n := f.srv.Requests(); n != 4 {
		t.Errorf("Requests = %d, want 4", n)
	}
	if n := f.srv.RequestsFor("user.whoami"); n != 3 {
		t.Errorf("RequestsFor(user.whoami) = %d, want 3", n)
	}
	if n := f.srv.RequestsFor("nope.nope"); n != 1 {
		t.Errorf("RequestsFor(nope.nope) = %d, want 1", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.alice, "busy")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			f.clock.Advance(time.Second)
			if _, err := f.srv.AddComment(r.PHID, f.bob.PHID, fmt.Sprint(i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 20 {
		var res revResult
		f.c.call("differential.revision.search", map[string]any{"order": "updated"}, &res)
		if len(res.Data) != 1 {
			t.Fatalf("revisions = %v", res.ids())
		}
	}
	<-done
	if n := len(f.srv.Transactions(r.PHID)); n != 22 {
		t.Errorf("transactions = %d, want 22", n)
	}
}

type editResult struct {
	Object struct {
		ID   int    `json:"id"`
		PHID string `json:"phid"`
	} `json:"object"`
	Transactions []struct {
		PHID string `json:"phid"`
	} `json:"transactions"`
}

type rawDiffResult struct {
	ID   int    `json:"id"`
	PHID string `json:"phid"`
	URI  string `json:"uri"`
}

type diffResult struct {
	Data []struct {
		ID     int    `json:"id"`
		PHID   string `json:"phid"`
		Fields struct {
			RevisionPHID   *string `json:"revisionPHID"`
			AuthorPHID     string  `json:"authorPHID"`
			RepositoryPHID *string `json:"repositoryPHID"`
		} `json:"fields"`
		Attachments struct {
			Commits *struct {
				Commits []struct {
					Message string `json:"message"`
				} `json:"commits"`
			} `json:"commits"`
		} `json:"attachments"`
	} `json:"data"`
}

const samplePatch = "diff --git a/main.go b/main.go\n--- a/main.go\n+++ b/main.go\n@@ -1 +1 @@\n-package old\n+package main\n"

// xactTypes returns a revision's transaction types, oldest first, as seen
// through transaction.search.
func (f *fixture) xactTypes(t *testing.T, rev string) ([]string, xactResult) {
	t.Helper()
	var res xactResult
	f.c.call("transaction.search", map[string]any{"objectIdentifier": rev}, &res)
	slices.Reverse(res.Data)
	var types []string
	for _, x := range res.Data {
		types = append(types, x.Type)
	}
	return types, res
}

func (f *fixture) rawDiff(t *testing.T, diff string, extra map[string]any) rawDiffResult {
	t.Helper()
	p := map[string]any{"diff": diff}
	for k, v := range extra {
		p[k] = v
	}
	var out rawDiffResult
	f.c.call("differential.createrawdiff", p, &out)
	return out
}

func (f *fixture) getRawDiff(t *testing.T, id int) string {
	t.Helper()
	var raw string
	f.c.call("differential.getrawdiff", map[string]any{"diffID": id}, &raw)
	return raw
}

func TestCreateRevisionThroughConduit(t *testing.T) {
	f := newFixture(t)
	f.revision(t, f.bob, "existing") // diff 1, D1
	f.clock.Advance(time.Minute)

	d := f.rawDiff(t, samplePatch, map[string]any{"repositoryPHID": f.repo.PHID, "viewPolicy": "users"})
	if d.ID != 2 || !strings.HasPrefix(d.PHID, "PHID-DIFF-") || d.URI != f.c.base+"/differential/diff/2/" {
		t.Fatalf("createrawdiff = %+v", d)
	}
	if got := f.getRawDiff(t, d.ID); got != samplePatch {
		t.Errorf("getrawdiff = %q", got)
	}
	hd, ok := f.srv.Diff(d.PHID)
	if !ok || hd.RevisionPHID != "" || hd.AuthorPHID != f.alice.PHID || hd.RepositoryPHID != f.repo.PHID ||
		hd.Raw != samplePatch || hd.CommitID != "" || hd.DateCreated != epoch.Unix()+60 {
		t.Errorf("Diff = %+v, %v", hd, ok)
	}
	var ds diffResult
	f.c.call("differential.diff.search", map[string]any{
		"constraints": map[string]any{"phids": []string{d.PHID}},
		"attachments": map[string]any{"commits": true},
	}, &ds)
	if len(ds.Data) != 1 || ds.Data[0].Fields.RevisionPHID != nil || ds.Data[0].Attachments.Commits == nil ||
		len(ds.Data[0].Attachments.Commits.Commits) != 0 || ds.Data[0].Fields.AuthorPHID != f.alice.PHID {
		t.Errorf("unattached diff = %+v", ds.Data)
	}

	f.clock.Advance(time.Minute)
	var out editResult
	f.c.call("differential.revision.edit", map[string]any{"transactions": []any{
		map[string]any{"type": "comment", "value": "please look"},
		map[string]any{"type": "update", "value": d.PHID},
		map[string]any{"type": "title", "value": "Sync tickets"},
		map[string]any{"type": "summary", "value": "Imports tickets."},
		map[string]any{"type": "testPlan", "value": "go test"},
	}}, &out)
	if out.Object.ID != 2 || !strings.HasPrefix(out.Object.PHID, "PHID-DREV-") || len(out.Transactions) != 6 {
		t.Fatalf("edit result = %+v", out)
	}
	rev, ok := f.srv.Revision("D2")
	now := epoch.Unix() + 120
	if !ok || rev.PHID != out.Object.PHID || rev.AuthorPHID != f.alice.PHID || rev.Status != StatusNeedsReview ||
		rev.RepositoryPHID != f.repo.PHID || rev.DiffPHID != d.PHID || rev.Title != "Sync tickets" ||
		rev.Summary != "Imports tickets." || rev.TestPlan != "go test" || rev.DateCreated != now || rev.DateModified != now {
		t.Errorf("revision = %+v", rev)
	}
	types, xs := f.xactTypes(t, rev.PHID)
	if !slices.Equal(types, []string{"create", "update", "title", "summary", "testPlan", "comment"}) {
		t.Fatalf("types = %v", types)
	}
	for i, x := range xs.Data {
		if x.PHID != out.Transactions[i].PHID || x.AuthorPHID != f.alice.PHID || x.DateCreated != now {
			t.Errorf("transaction %d = %+v, result phid %s", i, x, out.Transactions[i].PHID)
		}
	}
	if up := xs.Data[1].Fields; up["old"] != nil || up["new"] != d.PHID {
		t.Errorf("update fields = %v", up)
	}
	if ti := xs.Data[2].Fields; ti["old"] != "" || ti["new"] != "Sync tickets" {
		t.Errorf("title fields = %v", ti)
	}
	if c := xs.Data[5].Comments; len(c) != 1 || c[0].Content.Raw != "please look" {
		t.Errorf("comment = %+v", c)
	}

	// The diff is now attached, and the revision is searchable.
	if hd, _ := f.srv.Diff(d.PHID); hd.RevisionPHID != rev.PHID {
		t.Errorf("diff revisionPHID = %q", hd.RevisionPHID)
	}
	f.c.call("differential.diff.search", map[string]any{
		"constraints": map[string]any{"revisionPHIDs": []string{rev.PHID}},
	}, &ds)
	if len(ds.Data) != 1 || ds.Data[0].PHID != d.PHID || ds.Data[0].Fields.RevisionPHID == nil ||
		*ds.Data[0].Fields.RevisionPHID != rev.PHID {
		t.Errorf("diffs of new revision = %+v", ds.Data)
	}
	var rr revResult
	f.c.call("differential.revision.search", map[string]any{"constraints": map[string]any{"authorPHIDs": []string{f.alice.PHID}}}, &rr)
	if !slices.Equal(rr.ids(), []int{2}) || rr.Data[0].Fields.DiffPHID != d.PHID || rr.Data[0].Fields.Status.Value != StatusNeedsReview {
		t.Errorf("revision.search = %+v", rr.Data)
	}
	all := f.srv.Revisions()
	if len(all) != 2 || all[0].ID != 1 || all[0].Title != "existing" || all[1].PHID != rev.PHID {
		t.Errorf("Revisions = %+v", all)
	}
	all[1].Reviewers = append(all[1].Reviewers, Reviewer{PHID: f.bob.PHID})
	if r, _ := f.srv.Revision("D2"); len(r.Reviewers) != 0 {
		t.Errorf("Revisions returned shared state: %+v", r.Reviewers)
	}
}

func TestRevisionEditCreateErrors(t *testing.T) {
	f := newFixture(t)
	attached := f.revision(t, f.bob, "existing")
	free := f.rawDiff(t, samplePatch, nil)
	xactsBefore := len(f.srv.Transactions(attached.PHID))

	edit := func(xs ...map[string]any) string {
		t.Helper()
		list := []any{}
		for _, x := range xs {
			list = append(list, x)
		}
		code, info := f.c.callErr("differential.revision.edit", map[string]any{"transactions": list})
		if code != "ERR-CONDUIT-CORE" {
			t.Errorf("code = %q (%s)", code, info)
		}
		return info
	}
	tx := func(typ, value string) map[string]any { return map[string]any{"type": typ, "value": value} }
	cases := []struct {
		name string
		xs   []map[string]any
		want []string
	}{
		{"no diff", []map[string]any{tx("title", "t")},
			[]string{"You must specify an initial diff when creating a revision."}},
		{"no transactions", nil,
			[]string{"You must specify an initial diff when creating a revision.", "Revisions must have a title."}},
		{"unknown diff", []map[string]any{tx("update", "PHID-DIFF-nope"), tx("title", "t")},
			[]string{`Specified diff ("PHID-DIFF-nope") does not exist.`}},
		{"attached diff", []map[string]any{tx("update", attached.DiffPHID), tx("title", "t")},
			[]string{"because the diff is already attached to another revision."}},
		{"same diff twice", []map[string]any{tx("update", free.PHID), tx("update", free.PHID), tx("title", "t")},
			[]string{"already attached"}},
		{"no title", []map[string]any{tx("update", free.PHID), tx("summary", "s")},
			[]string{"Revisions must have a title."}},
		{"blank title", []map[string]any{tx("update", free.PHID), tx("title", "  ")},
			[]string{"Revisions must have a title."}},
		{"bad type", []map[string]any{tx("update", free.PHID), tx("reviewers.add", "x")},
			[]string{`invalid type "reviewers.add"`, "Valid types are: abandon, accept, close, comment, plan-changes, reclaim, reject, request-review, summary, testPlan, title, update."}},
	}
	for _, c := range cases {
		info := edit(c.xs...)
		for _, w := range c.want {
			if !strings.Contains(info, w) {
				t.Errorf("%s: info %q lacks %q", c.name, info, w)
			}
		}
	}
	info := edit(tx("title", "t"), tx("update", "PHID-DIFF-nope"))
	if !strings.HasPrefix(info, "Validation errors:\n  - ") {
		t.Errorf("validation error format: %q", info)
	}

	// Nothing changed.
	if all := f.srv.Revisions(); len(all) != 1 {
		t.Errorf("revisions after errors = %d", len(all))
	}
	if d, _ := f.srv.Diff(free.PHID); d.RevisionPHID != "" {
		t.Errorf("free diff got attached: %+v", d)
	}
	if n := len(f.srv.Transactions(attached.PHID)); n != xactsBefore {
		t.Errorf("transactions = %d, want %d", n, xactsBefore)
	}

	// createrawdiff and getrawdiff errors.
	for _, p := range []map[string]any{{}, {"diff": ""}, {"diff": " \n"}} {
		if code, info := f.c.callErr("differential.createrawdiff", p); code != "ERR-CONDUIT-CORE" ||
			!strings.Contains(info, "You can not create an empty diff.") {
			t.Errorf("empty diff %v: %q %q", p, code, info)
		}
	}
	code, info := f.c.callErr("differential.createrawdiff", map[string]any{"diff": samplePatch, "repositoryPHID": "PHID-REPO-nope"})
	if code != "ERR-CONDUIT-CORE" || info != `No such repository "PHID-REPO-nope"!` {
		t.Errorf("unknown repository: %q %q", code, info)
	}
	for _, p := range []map[string]any{{"diffID": 99}, {"diffID": 0}, {}, {"diffID": "x"}} {
		if code, info := f.c.callErr("differential.getrawdiff", p); code != "ERR-CONDUIT-CORE" {
			t.Errorf("getrawdiff %v: %q %q", p, code, info)
		}
	}
	if code, info := f.c.callErr("differential.getrawdiff", map[string]any{"diffID": 99}); info != "Diff not found." {
		t.Errorf("getrawdiff unknown: %q %q", code, info)
	}
	var ds diffResult
	f.c.call("differential.diff.search", nil, &ds)
	if len(ds.Data) != 2 {
		t.Errorf("diffs after failed createrawdiff = %d, want 2", len(ds.Data))
	}
}

func TestRawDiffOfHookDiffs(t *testing.T) {
	f := newFixture(t)
	r1, err := f.srv.CreateRevision(RevisionSpec{AuthorPHID: f.alice.PHID, Title: "t1", Patch: samplePatch})
	if err != nil {
		t.Fatal(err)
	}
	r2 := f.revision(t, f.bob, "Second") // commit message "Second\n\nbody"
	d3, err := f.srv.UpdateDiff(r2.PHID, f.bob.PHID, "Second v2")
	if err != nil {
		t.Fatal(err)
	}
	d4, err := f.srv.UpdateDiffPatch(r2.PHID, f.bob.PHID, "Second v3", samplePatch+"+more\n")
	if err != nil {
		t.Fatal(err)
	}
	d5, err := f.srv.UpdateDiff(r2.PHID, f.bob.PHID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.UpdateDiffPatch("PHID-DREV-nope", f.bob.PHID, "m", "p"); err != ErrNotFound {
		t.Errorf("UpdateDiffPatch unknown revision: %v", err)
	}

	want := map[int]string{
		1: samplePatch,
		2: "diff --git a/README b/README\nnew file mode 100644\n--- /dev/null\n+++ b/README\n@@ -0,0 +1,3 @@\n+Second\n+\n+body\n",
		3: "diff --git a/README b/README\nnew file mode 100644\n--- /dev/null\n+++ b/README\n@@ -0,0 +1,1 @@\n+Second v2\n",
		4: samplePatch + "+more\n",
		5: "diff --git a/README b/README\nnew file mode 100644\n--- /dev/null\n+++ b/README\n@@ -0,0 +1,1 @@\n+Second\n",
	}
	for id, w := range want {
		if got := f.getRawDiff(t, id); got != w {
			t.Errorf("getrawdiff(%d) = %q, want %q", id, got, w)
		}
	}
	if d, _ := f.srv.Diff(r1.DiffPHID); d.ID != 1 || d.Raw != samplePatch || d.RevisionPHID != r1.PHID {
		t.Errorf("Diff(r1) = %+v", d)
	}
	if d3.ID != 3 || d4.ID != 4 || d4.Raw != samplePatch+"+more\n" || d5.ID != 5 || d3.RevisionPHID != r2.PHID {
		t.Errorf("diffs = %+v %+v %+v", d3, d4, d5)
	}
	if rev, _ := f.srv.Revision(r2.PHID); rev.DiffPHID != d5.PHID {
		t.Errorf("diffPHID = %s, want %s", rev.DiffPHID, d5.PHID)
	}
	if _, ok := f.srv.Diff("PHID-DIFF-nope"); ok {
		t.Error("Diff of unknown PHID found")
	}
}

func TestRevisionEditUpdateExisting(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.bob, "t", f.alice)
	if _, err := f.srv.SetStatus(r.PHID, f.alice.PHID, StatusNeedsRevision); err != nil {
		t.Fatal(err)
	}
	other := f.srv.AddRepository("other", "OTH")
	f.clock.Advance(time.Minute)
	d := f.rawDiff(t, samplePatch, map[string]any{"repositoryPHID": other.PHID})
	f.clock.Advance(time.Minute)

	var out editResult
	f.c.call("differential.revision.edit", map[string]any{
		"objectIdentifier": "D1",
		"transactions": []any{
			map[string]any{"type": "comment", "value": "updated"},
			map[string]any{"type": "update", "value": d.PHID},
		},
	}, &out)
	if out.Object.PHID != r.PHID || len(out.Transactions) != 2 {
		t.Fatalf("edit result = %+v", out)
	}
	rev, _ := f.srv.Revision(r.PHID)
	if rev.DiffPHID != d.PHID || rev.Status != StatusNeedsReview || rev.RepositoryPHID != other.PHID ||
		rev.DateModified != epoch.Unix()+120 || rev.DateCreated != epoch.Unix() || rev.AuthorPHID != f.bob.PHID {
		t.Errorf("revision = %+v", rev)
	}
	types, xs := f.xactTypes(t, r.PHID)
	if !slices.Equal(types, []string{"create", "update", "reject", "update", "comment"}) {
		t.Fatalf("types = %v", types)
	}
	up := xs.Data[3]
	if up.PHID != out.Transactions[0].PHID || up.AuthorPHID != f.alice.PHID || up.Fields["old"] != r.DiffPHID ||
		up.Fields["new"] != d.PHID || xs.Data[4].PHID != out.Transactions[1].PHID {
		t.Errorf("update transaction = %+v, result %+v", up, out)
	}
	if hd, _ := f.srv.Diff(d.PHID); hd.RevisionPHID != r.PHID || hd.DateModified != epoch.Unix()+120 {
		t.Errorf("diff = %+v", hd)
	}

	// Reusing the diff, or a failing update next to a valid title, changes nothing.
	f.clock.Advance(time.Minute)
	_, info := f.c.callErr("differential.revision.edit", map[string]any{
		"objectIdentifier": r.PHID,
		"transactions": []any{
			map[string]any{"type": "title", "value": "renamed"},
			map[string]any{"type": "update", "value": d.PHID},
		},
	})
	if !strings.Contains(info, "already attached to another revision") {
		t.Errorf("reused diff: %q", info)
	}
	_, info = f.c.callErr("differential.revision.edit", map[string]any{
		"objectIdentifier": r.PHID,
		"transactions":     []any{map[string]any{"type": "title", "value": ""}},
	})
	if !strings.Contains(info, "Revisions must have a title.") {
		t.Errorf("empty title: %q", info)
	}
	if after, _ := f.srv.Revision(r.PHID); after.Title != "t" || after.DateModified != rev.DateModified || after.DiffPHID != d.PHID {
		t.Errorf("revision changed by failed edits: %+v", after)
	}
	if n := len(f.srv.Transactions(r.PHID)); n != 5 {
		t.Errorf("transactions = %d, want 5", n)
	}
}

func TestDateHeaderFollowsClock(t *testing.T) {
	f := newFixture(t)
	date := func(path string, form url.Values) time.Time {
		t.Helper()
		resp, err := http.PostForm(f.c.base+path, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("%s: Date %q: %v", path, resp.Header.Get("Date"), err)
		}
		return d
	}
	ok := url.Values{"api.token": {f.alice.Token}}
	if d := date("/api/conduit.ping", ok); !d.Equal(epoch) {
		t.Errorf("Date = %v, want %v", d, epoch)
	}
	f.clock.Advance(90*time.Minute + 500*time.Millisecond)
	want := epoch.Add(90 * time.Minute)
	if d := date("/api/user.whoami", ok); !d.Equal(want) {
		t.Errorf("Date = %v, want %v", d, want)
	}
	if d := date("/api/user.whoami", url.Values{"api.token": {"api-bad"}}); !d.Equal(want) {
		t.Errorf("Date on error = %v, want %v", d, want)
	}
	if d := date("/nope", nil); !d.Equal(want) {
		t.Errorf("Date on 404 = %v, want %v", d, want)
	}
	f.clock.Set(time.Date(2030, 6, 1, 12, 0, 0, 0, time.FixedZone("X", 3600)))
	if d := date("/api/conduit.ping", ok); !d.Equal(time.Date(2030, 6, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("Date after Set = %v", d)
	}
}

func TestSetTitle(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.alice, "old title", f.bob)
	f.clock.Advance(time.Hour)
	x, err := f.srv.SetTitle(r.PHID, f.bob.PHID, "new title")
	if err != nil {
		t.Fatal(err)
	}
	if x.Type != "title" || x.AuthorPHID != f.bob.PHID || x.ObjectPHID != r.PHID || x.Fields["old"] != "old title" ||
		x.Fields["new"] != "new title" || x.DateCreated != epoch.Unix()+3600 {
		t.Errorf("transaction = %+v", x)
	}
	var rr revResult
	f.c.call("differential.revision.search", nil, &rr)
	if rr.Data[0].Fields.Title != "new title" || rr.Data[0].Fields.DateModified != epoch.Unix()+3600 {
		t.Errorf("revision = %+v", rr.Data[0].Fields)
	}
	types, xs := f.xactTypes(t, r.PHID)
	last := xs.Data[len(xs.Data)-1]
	if types[len(types)-1] != "title" || last.PHID != x.PHID || last.Fields["new"] != "new title" || last.Fields["old"] != "old title" {
		t.Errorf("transaction.search = %v %+v", types, last)
	}
	if _, err := f.srv.SetTitle(r.PHID, f.bob.PHID, ""); err == nil {
		t.Error("empty title accepted")
	}
	if _, err := f.srv.SetTitle("D99", f.bob.PHID, "x"); err != ErrNotFound {
		t.Errorf("unknown revision: %v", err)
	}
	if rev, _ := f.srv.Revision(r.PHID); rev.Title != "new title" {
		t.Errorf("title = %q", rev.Title)
	}
}

// Review actions: a reviewer accepts or rejects, the author abandons and
// reclaims; the wrong one, or a value other than true, is refused and
// changes nothing.
func TestRevisionEditActions(t *testing.T) {
	f := newFixture(t)
	r := f.revision(t, f.bob, "t", f.alice) // alice (the client) reviews bob's
	act := func(c client, typ string, value any) (string, string) {
		res := c.raw("differential.revision.edit", map[string]any{
			"objectIdentifier": r.PHID, "transactions": []any{map[string]any{"type": typ, "value": value}},
		})
		if res.ErrorCode == nil {
			return "", ""
		}
		return *res.ErrorCode, deref(res.ErrorInfo)
	}
	bob := client{t: t, base: f.c.base, token: f.bob.Token}
	if code, info := act(f.c, "accept", true); code != "" {
		t.Fatalf("accept by a reviewer: %s %s", code, info)
	}
	now, _ := f.srv.Revision(r.PHID)
	if now.Status != StatusAccepted || now.Reviewers[0].Status != "accepted" {
		t.Fatalf("after accept: %+v", now)
	}
	for _, c := range []struct {
		c     client
		typ   string
		value any
		want  string
	}{
		{bob, "accept", true, "because you are the owner"},
		{f.c, "abandon", true, "because you do not own it"},
		{bob, "reclaim", true, "has not been abandoned"},
		{f.c, "reject", "yes", "has an invalid value"},
	} {
		if code, info := act(c.c, c.typ, c.value); code != "ERR-CONDUIT-CORE" || !strings.Contains(info, c.want) {
			t.Errorf("%s: %s %q, want %q", c.typ, code, info, c.want)
		}
	}
	if after, _ := f.srv.Revision(r.PHID); after.Status != StatusAccepted || after.DateModified != now.DateModified {
		t.Fatalf("a refused action changed the revision: %+v", after)
	}
	if code, info := act(bob, "abandon", true); code != "" {
		t.Fatalf("abandon by the author: %s %s", code, info)
	}
	if code, info := act(bob, "reclaim", true); code != "" {
		t.Fatalf("reclaim by the author: %s %s", code, info)
	}
	if after, _ := f.srv.Revision(r.PHID); after.Status != StatusNeedsReview {
		t.Fatalf("after reclaim: %s", after.Status)
	}
	kinds := []string{}
	for _, x := range f.srv.Transactions(r.PHID) {
		kinds = append(kinds, x.Type)
	}
	if got := strings.Join(kinds, " "); !strings.HasSuffix(got, "accept abandon reclaim") {
		t.Fatalf("transactions: %s", got)
	}
}

func TestRepositorySearch(t *testing.T) {
	f := newFixture(t)
	other := f.srv.AddRepository("other", "")
	var res struct {
		Data []struct {
			PHID   string `json:"phid"`
			Fields struct {
				Name     string  `json:"name"`
				Callsign *string `json:"callsign"`
			} `json:"fields"`
		} `json:"data"`
	}
	f.c.call("diffusion.repository.search", map[string]any{"constraints": map[string]any{"phids": []string{f.repo.PHID, other.PHID}}}, &res)
	got := map[string]string{}
	for _, r := range res.Data {
		got[r.PHID] = r.Fields.Name + "/" + deref(r.Fields.Callsign)
	}
	if len(got) != 2 || got[f.repo.PHID] != "prophet/PRO" || got[other.PHID] != "other/<nil>" {
		t.Fatalf("repositories: %v", got)
	}
}
