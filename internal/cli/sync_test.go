package cli

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// The prompt and the progress line need a terminal, which the scripts do
// not have; these test them on plain readers and writers.

func testConflict() *merge.Conflict {
	return &merge.Conflict{
		Conflict: replica.Conflict{Type: "ticket", Record: uuid.MustParse("00000001-0001-4000-8000-000000000001"), Op: changeset.Update,
			Base:   []replica.Prop{{Name: "status", Value: "new"}},
			Source: replica.Outcome{Live: true, Props: []replica.Prop{{Name: "status", Value: "open"}}},
			Target: replica.Outcome{Live: true, Props: []replica.Prop{{Name: "status", Value: "closed"}}}},
		Changeset: &changeset.Changeset{Creator: "alice@example.com"},
	}
}

func TestPrompt(t *testing.T) {
	for _, tc := range []struct {
		name, input string
		push        bool
		want        string // the status chosen; "" for an abort
		asked       int    // how often the question was asked
	}{
		{"mine on pull keeps this replica's", "m\n", false, "closed", 1},
		{"theirs on pull takes the source's", "theirs\n", false, "open", 1},
		{"mine on push keeps this replica's, the source", "m\n", true, "open", 1},
		{"theirs on push keeps the target's", "T\n", true, "closed", 1},
		{"asks again after a wrong answer", "x\n\nm\n", false, "closed", 3},
		{"abort", "a\n", false, "", 1},
		{"end of input aborts", "", false, "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			c := &call{stdin: strings.NewReader(tc.input), stderr: &stderr}
			aborted := false
			ask := c.prompt(&progress{w: &stderr}, nil, location{peer: "origin"}, tc.push, &aborted)
			out, err := ask(context.Background(), testConflict())
			switch {
			case tc.want == "" && (err == nil || !aborted):
				t.Fatalf("got %v, %v, aborted %v; want an abort", out, err, aborted)
			case tc.want != "" && (err != nil || aborted || out.Get("status") != tc.want):
				t.Fatalf("got %v, %v, aborted %v; want status %s", out, err, aborted, tc.want)
			}
			mine, theirs := "closed", "open"
			if tc.push {
				mine, theirs = theirs, mine
			}
			head := "conflict with origin: ticket 00000001-0001-4000-8000-000000000001, an update by alice@example.com\n" +
				"  status was new, mine " + mine + ", theirs " + theirs + "\n"
			if got := stderr.String(); !strings.HasPrefix(got, head) || strings.Count(got, "keep [m]ine, take [t]heirs, or [a]bort? ") != tc.asked {
				t.Fatalf("stderr:\n%s\nwant it to start with\n%s\nand ask %d times", got, head, tc.asked)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var w bytes.Buffer
	p := &progress{w: &w, on: true, start: time.Now()}
	p.update(merge.Report{Read: 100})
	p.done()
	if w.Len() != 0 {
		t.Fatalf("within the first second: %q, want nothing", w.String())
	}
	p.start = time.Now().Add(-2 * time.Second)
	p.update(merge.Report{Read: 12345})
	p.update(merge.Report{Read: 12346}) // too soon after the last: not shown
	if !regexp.MustCompile(`^\r12,345 changesets, [0-9,]+/s\x1b\[K$`).MatchString(w.String()) {
		t.Fatalf("progress line %q", w.String())
	}
	w.Reset()
	p.done()
	p.done()
	if w.String() != "\r\x1b[K" {
		t.Fatalf("done wrote %q, want the line cleared once", w.String())
	}

	w.Reset()
	off := &progress{w: &w, start: time.Now().Add(-time.Hour)} // not a terminal
	off.update(merge.Report{Read: 1 << 20})
	off.done()
	if w.Len() != 0 {
		t.Fatalf("not on a terminal: %q, want nothing", w.String())
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 999: "999", 1000: "1,000", 41000: "41,000", 1234567: "1,234,567"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
