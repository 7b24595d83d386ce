package changeset

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// JSON is a changeset's JSON form: what `prophet log --json` prints and
// what a live subscription sends (DESIGN.md, "Live subscriptions"). It is
// lossless: Changeset turns it back into the changeset it came from, whose
// content hash is Hash.
type JSON struct {
	Seq             uint64       `json:"seq"` // in the log it was read from
	Origin          string       `json:"origin"`
	OriginSeq       uint64       `json:"origin_seq"`
	Creator         string       `json:"creator"`
	Created         string       `json:"created"` // RFC 3339, in nanoseconds, UTC
	IsNullification bool         `json:"is_nullification"`
	IsResolution    bool         `json:"is_resolution"`
	Hash            string       `json:"hash"` // hex SHA-256 of the canonical encoding
	Changes         []ChangeJSON `json:"changes"`
}

// ChangeJSON is one change of a JSON changeset.
type ChangeJSON struct {
	Type  string     `json:"type"`
	UUID  string     `json:"uuid"`
	Op    string     `json:"op"` // add, update or delete
	Props []PropJSON `json:"props"`
}

// PropJSON is one property change; "" is absent.
type PropJSON struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// ToJSON returns the JSON form of cs, whose hash is hash (cs.Hash()).
func (cs *Changeset) ToJSON(hash Hash) *JSON {
	origin := ""
	if cs.Origin != uuid.Nil {
		origin = cs.Origin.String()
	}
	out := &JSON{Seq: cs.Seq, Origin: origin, OriginSeq: cs.OriginSeq,
		Creator: cs.Creator, Created: cs.Created.UTC().Format(time.RFC3339Nano), IsNullification: cs.IsNullification,
		IsResolution: cs.IsResolution, Hash: hash.String(), Changes: make([]ChangeJSON, len(cs.Changes))}
	for i, ch := range cs.Changes {
		c := ChangeJSON{Type: ch.RecordType, UUID: ch.Record.String(), Op: ch.Op.String(), Props: make([]PropJSON, len(ch.Props))}
		for j, p := range ch.Props {
			c.Props[j] = PropJSON{p.Name, p.Old, p.New}
		}
		out.Changes[i] = c
	}
	return out
}

// Changeset turns j back into a changeset (with Seq set, Source not). It
// fails, wrapping ErrInvalid, if j is not a valid changeset or its content
// does not hash to j.Hash.
func (j *JSON) Changeset() (*Changeset, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: JSON changeset: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	cs := &Changeset{Seq: j.Seq, OriginSeq: j.OriginSeq, Creator: j.Creator,
		IsNullification: j.IsNullification, IsResolution: j.IsResolution, Changes: make([]Change, len(j.Changes))}
	var err error
	if cs.Origin, err = uuid.Parse(j.Origin); err != nil {
		return nil, bad("origin %q: %v", j.Origin, err)
	}
	if cs.Created, err = time.Parse(time.RFC3339Nano, j.Created); err != nil {
		return nil, bad("created %q: %v", j.Created, err)
	}
	cs.Created = cs.Created.UTC()
	for i, c := range j.Changes {
		ch := &cs.Changes[i]
		ch.RecordType = c.Type
		if ch.Record, err = uuid.Parse(c.UUID); err != nil {
			return nil, bad("change %d: uuid %q: %v", i+1, c.UUID, err)
		}
		if ch.Op, err = ParseOp(c.Op); err != nil {
			return nil, bad("change %d: %v", i+1, err)
		}
		ch.Props = make([]PropChange, len(c.Props))
		for k, p := range c.Props {
			ch.Props[k] = PropChange{Name: p.Name, Old: p.Old, New: p.New}
		}
	}
	h, err := cs.Hash()
	if err != nil {
		return nil, err
	}
	if want, err := hex.DecodeString(j.Hash); err != nil || len(want) != len(h) || Hash(want) != h {
		return nil, bad("its content hashes to %s, not to %q", h, j.Hash)
	}
	return cs, nil
}
