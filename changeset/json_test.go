package changeset_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/prophet-sync/prophet/changeset"
)

// The JSON form gives back the very changeset: same canonical bytes.
func TestJSONRoundTrip(t *testing.T) {
	cs := sample()
	cs.Normalize()
	cs.Seq = 7
	h, err := cs.Hash()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(cs.ToJSON(h))
	if err != nil {
		t.Fatal(err)
	}
	var j changeset.JSON
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	back, err := j.Changeset()
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	h2, err := back.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if h2 != h || back.Seq != cs.Seq {
		t.Fatalf("round trip changed the changeset:\n%s", b)
	}
}

// A JSON changeset whose content does not match its hash, or that is not a
// valid changeset, is refused as invalid.
func TestJSONRefusesTampering(t *testing.T) {
	cs := sample()
	cs.Normalize()
	h, err := cs.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.ToJSON(h).Changeset(); err != nil {
		t.Fatalf("untampered: %v", err)
	}
	for name, tamper := range map[string]func(*changeset.JSON){
		"changed value": func(j *changeset.JSON) { j.Changes[0].Props[0].New += "!" },
		"changed time":  func(j *changeset.JSON) { j.Created = "2001-01-01T00:00:00Z" },
		"bad uuid":      func(j *changeset.JSON) { j.Changes[0].UUID = "nope" },
		"bad op":        func(j *changeset.JSON) { j.Changes[0].Op = "rename" },
		"no changes":    func(j *changeset.JSON) { j.Changes = nil },
	} {
		j := cs.ToJSON(h)
		tamper(j)
		_, err := j.Changeset()
		if !errors.Is(err, changeset.ErrInvalid) {
			t.Errorf("%s: got %v, want an error wrapping ErrInvalid", name, err)
		} else if !strings.Contains(err.Error(), "changeset") {
			t.Errorf("%s: unclear error %v", name, err)
		}
	}
}
