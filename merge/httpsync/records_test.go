package httpsync_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// The read-only records API lists, shows and gives the history of records,
// in the JSON shapes of the CLI, with clear errors.
func TestRecordsAPI(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	srv := serveLive(t, a, nil)
	var ids []uuid.UUID
	for i, st := range []string{"open", "open", "closed"} {
		cs, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"status": st, "n": string(rune('a' + i))}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, cs.Changes[0].Record)
	}
	if _, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Record: ids[0], Op: replica.Update, Set: map[string]string{"status": "fixed"}}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	lines := func(body string) []map[string]any {
		var out []map[string]any
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatalf("not a JSON line: %q", sc.Text())
			}
			out = append(out, m)
		}
		return out
	}

	code, ct, body := get("/v1/records/bug")
	if code != 200 || ct != "application/x-ndjson" || len(lines(body)) != 3 {
		t.Fatalf("list: %d %s\n%s", code, ct, body)
	}
	if _, _, body := get("/v1/records/bug?status=open"); len(lines(body)) != 1 {
		t.Fatalf("list status=open:\n%s", body)
	}
	if _, _, body := get("/v1/records/bug?limit=2"); len(lines(body)) != 2 {
		t.Fatalf("list limit=2:\n%s", body)
	}
	if code, _, body := get("/v1/records/nothing"); code != 200 || body != "" {
		t.Fatalf("list of a type with no records: %d %q", code, body)
	}

	// show, by LUID and by UUID prefix.
	var rec replica.RecordJSON
	code, _, body = get("/v1/records/bug/1")
	if err := json.Unmarshal([]byte(body), &rec); err != nil || code != 200 {
		t.Fatalf("show 1: %d %v\n%s", code, err, body)
	}
	if rec.UUID != ids[0].String() || rec.Props["status"] != "fixed" || rec.LUID != 1 {
		t.Fatalf("show 1: %+v", rec)
	}
	// The shortest prefix (of 8 or more) no other record shares: record
	// UUIDs are time-ordered (v7), and ones made in one second share more.
	prefix := ids[1].String()[:8]
	for n := 9; slices.ContainsFunc(ids, func(id uuid.UUID) bool { return id != ids[1] && strings.HasPrefix(id.String(), prefix) }); n++ {
		prefix = ids[1].String()[:n]
	}
	if code, _, body := get("/v1/records/bug/" + prefix); code != 200 || !strings.Contains(body, ids[1].String()) {
		t.Fatalf("show by prefix: %d %s", code, body)
	}
	if code, _, body := get("/v1/records/bug/99"); code != 404 || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("show of an unknown record: %d %s", code, body)
	}

	// history: both changesets, oldest first, whole.
	code, _, body = get("/v1/records/bug/1/history")
	hs := lines(body)
	if code != 200 || len(hs) != 2 {
		t.Fatalf("history: %d\n%s", code, body)
	}
	var j changeset.JSON
	b, _ := json.Marshal(hs[1])
	json.Unmarshal(b, &j)
	cs, err := j.Changeset()
	if err != nil || cs.Seq != 4 {
		t.Fatalf("history's last changeset: %v %+v", err, cs)
	}

	// Read-only: no other method.
	resp, err := http.Post(srv.URL+"/v1/records/bug", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" || !strings.Contains(string(b), `"code":"method_not_allowed"`) {
		t.Fatalf("POST /v1/records/bug: %d %q %s", resp.StatusCode, resp.Header.Get("Allow"), b)
	}
}
