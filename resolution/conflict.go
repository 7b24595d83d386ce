package resolution

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/internal/wire"
)

// Prop is one property value; "" means absent.
type Prop struct{ Name, Value string }

// Outcome is one side of a conflict for one record: whether the record is
// live, and the values of the properties in conflict, sorted by Name, one
// entry per name (Value "" = absent). A record that is not live has no
// values: every Value is "".
type Outcome struct {
	Live  bool
	Props []Prop
}

// Conflict is one record's conflict as seen when integrating a changeset:
// Base holds the incoming change's old values (the common ancestor both
// sides started from), Source what the incoming change makes of the record,
// Target what this replica has. All three list the same property names,
// sorted, each once.
type Conflict struct {
	Type   string
	Record uuid.UUID
	Base   []Prop
	Source Outcome
	Target Outcome
}

// Fingerprint identifies a conflict independently of which side sees it
// (see Conflict.Fingerprint). It is part of the wire contract: replicas that
// meet the same conflict find each other's decisions by it.
type Fingerprint [sha256.Size]byte

func (f Fingerprint) String() string { return hex.EncodeToString(f[:]) }

// Short is the first 12 hex digits, for display.
func (f Fingerprint) Short() string { return f.String()[:12] }

// fingerprintTag starts every fingerprinted encoding, so that no other
// SHA-256 in prophet can collide with a fingerprint by construction.
const fingerprintTag = "prophet conflict 1\n"

// Fingerprint returns the conflict's fingerprint: SHA-256 over
//
//	"prophet conflict 1\n" ‖ lp(Type) ‖ Record (16 bytes) ‖ props(Base) ‖ lo ‖ hi
//
// where lo and hi are out(Source) and out(Target) in bytewise order (equal
// ones either way), so swapping Source and Target gives the same fingerprint,
// and
//
//	out(o)    = 0x01 if o.Live else 0x00 ‖ props(o.Props)
//	props(ps) = uvarint(len(ps)) ‖ lp(p.Name) ‖ lp(p.Value) for each p in order
//	lp(s)     = uvarint(len(s)) ‖ the bytes of s
//
// Every part is self-delimiting, so no two conflicts share an encoding.
// Changing this changes every fingerprint: recorded decisions would no
// longer be found.
func (c *Conflict) Fingerprint() Fingerprint {
	b := appendLP(append(make([]byte, 0, 256), fingerprintTag...), c.Type)
	b = append(b, c.Record[:]...)
	b = appendProps(b, c.Base)
	lo, hi := appendOutcome(nil, c.Source), appendOutcome(nil, c.Target)
	if bytes.Compare(lo, hi) > 0 {
		lo, hi = hi, lo
	}
	return sha256.Sum256(append(append(b, lo...), hi...))
}

func appendLP(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendProps(b []byte, ps []Prop) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendLP(appendLP(b, p.Name), p.Value)
	}
	return b
}

func appendOutcome(b []byte, o Outcome) []byte {
	live := byte(0)
	if o.Live {
		live = 1
	}
	return appendProps(append(b, live), o.Props)
}

var (
	// ErrCorrupt marks every error that comes from bytes that are not a
	// well-formed encoded decision: from disk or from a peer.
	ErrCorrupt = errors.New("resolution: corrupt decision")
	// ErrInvalid marks a Decision built in memory that breaks a rule (see
	// Encode).
	ErrInvalid = errors.New("resolution: invalid decision")
)

// Limits on what a decision may hold.
const (
	MaxNameLen = 256 // bytes in a record type or property name, as in changeset
	MaxHowLen  = 64  // bytes in Decision.How
	// MaxEncodedSize bounds one encoded decision. A conflict holds up to four
	// copies of one record's values (base, both sides, final), and a
	// changeset may hold 16 MiB.
	MaxEncodedSize = 64 << 20
)

// validate returns a bare description of the first rule d breaks.
func (d *Decision) validate() error {
	switch {
	case d.Origin == uuid.Nil:
		return errors.New("origin replica UUID is nil")
	case d.Seq == 0:
		return errors.New("sequence number is 0 (sequences start at 1)")
	case d.Stamp <= 0:
		return fmt.Errorf("stamp %d is not a positive Unix time in ns", d.Stamp)
	case d.How == "" || len(d.How) > MaxHowLen || !utf8.ValidString(d.How):
		return fmt.Errorf("how %q is empty, longer than %d bytes or not UTF-8", d.How, MaxHowLen)
	}
	c := &d.Conflict
	if err := wire.ValidName("record type", c.Type, MaxNameLen); err != nil {
		return err
	}
	if c.Record == uuid.Nil {
		return errors.New("record UUID is nil")
	}
	for i, p := range c.Base {
		if err := wire.ValidName("property name", p.Name, MaxNameLen); err != nil {
			return err
		}
		if i > 0 && c.Base[i-1].Name >= p.Name {
			return fmt.Errorf("property %q: names are not sorted or not unique", p.Name)
		}
		if !utf8.ValidString(p.Value) {
			return fmt.Errorf("base: property %q: value is not UTF-8", p.Name)
		}
	}
	for _, o := range []struct {
		what string
		o    *Outcome
	}{{"source", &c.Source}, {"target", &c.Target}, {"final", &d.Final}} {
		if err := validOutcome(o.o, c.Base); err != nil {
			return fmt.Errorf("%s: %w", o.what, err)
		}
	}
	if f := c.Fingerprint(); f != d.Fingerprint {
		return fmt.Errorf("fingerprint %s is not the conflict's (%s)", d.Fingerprint.Short(), f.Short())
	}
	return nil
}

// validOutcome checks that o lists exactly the names of base, in order,
// with UTF-8 values, and no value at all when the record is not live.
func validOutcome(o *Outcome, base []Prop) error {
	if len(o.Props) != len(base) {
		return fmt.Errorf("%d properties, the conflict has %d", len(o.Props), len(base))
	}
	for i, p := range o.Props {
		switch {
		case p.Name != base[i].Name:
			return fmt.Errorf("property %q where the conflict has %q", p.Name, base[i].Name)
		case !utf8.ValidString(p.Value):
			return fmt.Errorf("property %q: value is not UTF-8", p.Name)
		case !o.Live && p.Value != "":
			return fmt.Errorf("property %q has a value but the record is not live", p.Name)
		}
	}
	return nil
}
