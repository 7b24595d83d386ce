package changeset_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// -update-golden writes golden files that do not exist yet. It never rewrites
// one: a committed vector is a promise that those bytes decode forever.
var updateGolden = flag.Bool("update-golden", false, "write missing golden vectors in testdata/golden")

// goldenCases are written once with -update-golden and then frozen.
func goldenCases() map[string]*changeset.Changeset {
	at := time.Date(2026, 11, 22, 18, 0, 0, 5, time.UTC)
	big := strings.Repeat("long body ", 40) // str16
	m := map[string]*changeset.Changeset{
		"v1-add": {Origin: origin, OriginSeq: 1, Creator: "alice@example.com", Created: at,
			Changes: []changeset.Change{{RecordType: "ticket", Record: recA, Op: changeset.Add, Props: []changeset.PropChange{
				{Name: "summary", New: "printer on fire"}, {Name: "status", New: "new"}, {Name: "body", New: big}}}}},
		"v1-update-delete": {Origin: origin, OriginSeq: 1 << 40, Creator: "bob", Created: at.Add(-100 * 365 * 24 * time.Hour),
			Changes: []changeset.Change{
				{RecordType: "ticket", Record: recA, Op: changeset.Update, Props: []changeset.PropChange{
					{Name: "status", Old: "new", New: "open"}, {Name: "owner", New: "bob"}, {Name: "body", Old: big}}},
				{RecordType: "comment", Record: recB, Op: changeset.Delete, Props: []changeset.PropChange{
					{Name: "content", Old: "ünïcödé ✓"}}},
			}},
		"v1-nullification": {Origin: uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), OriginSeq: 300, Created: at,
			IsNullification: true,
			Changes: []changeset.Change{{RecordType: "ticket", Record: recA, Op: changeset.Update, Props: []changeset.PropChange{
				{Name: "status", Old: "open", New: "new"}}}}},
		"v1-resolution": {Origin: origin, OriginSeq: 301, Creator: "carol", Created: at, IsResolution: true,
			Changes: []changeset.Change{{RecordType: "ticket", Record: recB, Op: changeset.Add}}},
	}
	for _, cs := range m {
		cs.Normalize()
	}
	return m
}

// dump is a stable text form of a decoded changeset, compared against the
// .txt beside each vector.
func dump(cs *changeset.Changeset, h changeset.Hash) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id %s\nhash %s\ncreator %q\ncreated %s\nnullification %v resolution %v\n",
		cs.ID(), h, cs.Creator, cs.Created.Format(time.RFC3339Nano), cs.IsNullification, cs.IsResolution)
	for _, c := range cs.Changes {
		fmt.Fprintf(&b, "%s %s %s\n", c.Op, c.RecordType, c.Record)
		for _, p := range c.Props {
			fmt.Fprintf(&b, "  %s: %q -> %q\n", p.Name, p.Old, p.New)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *updateGolden {
		os.MkdirAll(dir, 0o755)
		for name, cs := range goldenCases() {
			p := filepath.Join(dir, name+".msgpack")
			if _, err := os.Stat(p); err == nil {
				continue
			}
			b := mustEncode(t, cs)
			os.WriteFile(p, b, 0o644)
			os.WriteFile(filepath.Join(dir, name+".txt"), []byte(dump(cs, changeset.HashOf(b))), 0o644)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.msgpack"))
	if len(files) < len(goldenCases()) {
		t.Fatalf("found %d golden vectors in %s, want at least %d (run with -update-golden once)", len(files), dir, len(goldenCases()))
	}
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".msgpack")
		t.Run(name, func(t *testing.T) {
			b, _ := os.ReadFile(p)
			want, err := os.ReadFile(strings.TrimSuffix(p, ".msgpack") + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			cs, err := changeset.Decode(b)
			if err != nil {
				t.Fatalf("a committed golden vector no longer decodes: %v", err)
			}
			if got := dump(cs, changeset.HashOf(b)); got != string(want) {
				t.Fatalf("decoded differently:\n got: %s\nwant: %s", got, want)
			}
			if re := mustEncode(t, cs); string(re) != string(b) {
				t.Fatalf("re-encoding differs from the golden bytes")
			}
			// The in-memory cases still encode to the frozen bytes: the
			// encoder has not drifted.
			if orig, ok := goldenCases()[name]; ok {
				if e := mustEncode(t, orig); string(e) != string(b) {
					t.Fatalf("Encode(%s) no longer yields the golden bytes", name)
				}
			}
		})
	}
}
