package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
)

// TestBenchForeignRT runs bench foreign rt, small, against the real RT
// (.ci/rt up; PROPHET_RT_TEST_URL), and checks its bars: a no-op pull is
// one request, and the pull after the push brings nothing back.
func TestBenchForeignRT(t *testing.T) {
	url := os.Getenv("PROPHET_RT_TEST_URL")
	if url == "" {
		if os.Getenv("PROPHET_REQUIRE_RT") != "" {
			t.Fatal("PROPHET_REQUIRE_RT is set but PROPHET_RT_TEST_URL is not: start RT with .ci/rt up")
		}
		t.Skip("no RT server: run .ci/rt up and export PROPHET_RT_TEST_URL")
	}
	var out, errs bytes.Buffer
	args := []string{"foreign", "rt", "--url", url, "--tickets", "6", "--edits", "3", "--dir", t.TempDir(), "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var rep ForeignReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if rep.NoopRequests != 1 || rep.EchoesAfterPush != 0 || rep.Changesets == 0 || rep.PullTicketsPerSec <= 0 || rep.PushEditsPerSec <= 0 {
		t.Fatalf("report: %+v", rep)
	}
}

// TestBenchForeignPhabricator runs bench foreign phabricator, small, and
// checks its bars: every revision and transaction becomes a record, and a
// steady no-op refresh is one request.
func TestBenchForeignPhabricator(t *testing.T) {
	var out, errs bytes.Buffer
	args := []string{"foreign", "phabricator", "--revisions", "120", "--transactions", "6", "--changed", "5", "--dir", t.TempDir(), "--json"}
	if err := Run(context.Background(), args, &out, &errs); err != nil {
		t.Fatalf("Run: %v\nstderr:\n%s", err, errs.String())
	}
	var rep PhabricatorReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	recs := rep.RecordsByType
	if rep.NoopRequests != 1 || recs["revision"] != 120 || recs["comment"]+recs["transaction"] != rep.Transactions ||
		rep.PullRequests < 240 || rep.RefreshReqs < 5 || rep.PullItemsPerS <= 0 {
		t.Fatalf("report: %+v", rep)
	}
}
