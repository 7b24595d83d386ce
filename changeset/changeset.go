package changeset

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/internal/wire"
)

// Op is what a Change does to its record.
type Op uint8

const (
	// Add creates the record. Every PropChange has Old == "" and a New
	// value.
	Add Op = 1
	// Update changes some properties of an existing record.
	Update Op = 2
	// Delete removes the record. Its PropChanges carry every one of the
	// record's last values as Old (and New == ""), so a delete can be
	// checked for conflicts and reverted by a nullification.
	Delete Op = 3
)

func (o Op) String() string {
	switch o {
	case Add:
		return "add"
	case Update:
		return "update"
	case Delete:
		return "delete"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	switch s {
	case "add":
		return Add, nil
	case "update":
		return Update, nil
	case "delete":
		return Delete, nil
	}
	return 0, fmt.Errorf("changeset: unknown change type %q (want add, update or delete)", s)
}

// PropChange is one property's transition. "" is absent on either side.
type PropChange struct {
	Name string
	Old  string
	New  string
}

// Change is what one changeset does to one record.
type Change struct {
	RecordType string
	Record     uuid.UUID
	Op         Op
	// Props is sorted by Name, with each name at most once.
	Props []PropChange
}

// Prop returns the change to the named property and whether there is one.
func (c *Change) Prop(name string) (PropChange, bool) {
	i, ok := slices.BinarySearchFunc(c.Props, name, func(p PropChange, n string) int {
		return strings.Compare(p.Name, n)
	})
	if !ok {
		return PropChange{}, false
	}
	return c.Props[i], true
}

// ID identifies a changeset on every replica: where it was first written and
// its sequence number there.
type ID struct {
	Origin uuid.UUID
	Seq    uint64
}

func (id ID) String() string { return fmt.Sprintf("%s@%d", id.Origin, id.Seq) }

// Changeset is one atomic set of changes, written on its origin replica.
type Changeset struct {
	// Origin and OriginSeq are the replica that first wrote the changeset and
	// its sequence number there (Prophet's original_source_uuid and
	// original_sequence_no). They are part of the canonical encoding.
	Origin    uuid.UUID
	OriginSeq uint64

	// Seq and Source say where this copy was read from: its sequence number in
	// the log of replica Source. They are not encoded and not hashed; a
	// replica fills them in when it reads its log.
	Seq    uint64
	Source uuid.UUID

	Creator string
	// Created is encoded as Unix nanoseconds; decoding yields UTC.
	Created time.Time

	// IsNullification marks a changeset that reverts local state so that an
	// incoming conflicting changeset applies cleanly (see merge).
	IsNullification bool
	// IsResolution marks a changeset that records how a conflict was settled.
	IsResolution bool

	// Changes is sorted by (RecordType, Record), each record at most once.
	// Normalize sorts a changeset built by hand.
	Changes []Change
}

// ID returns the changeset's identity.
func (cs *Changeset) ID() ID { return ID{Origin: cs.Origin, Seq: cs.OriginSeq} }

// Limits on what a well-formed changeset may hold. They bound what a decoder
// accepts from a peer; nothing legitimate comes near them.
const (
	MaxEncodedSize = 16 << 20 // bytes in one encoded changeset
	MaxNameLen     = 256      // bytes in a record type or property name
	MaxCreatorLen  = 1024
)

// Normalize sorts Changes and each change's Props into canonical order. It
// does not check them; Validate does.
func (cs *Changeset) Normalize() {
	slices.SortFunc(cs.Changes, compareChanges)
	for i := range cs.Changes {
		slices.SortFunc(cs.Changes[i].Props, func(a, b PropChange) int {
			return strings.Compare(a.Name, b.Name)
		})
	}
}

func compareChanges(a, b Change) int {
	if c := strings.Compare(a.RecordType, b.RecordType); c != 0 {
		return c
	}
	return bytes.Compare(a.Record[:], b.Record[:])
}

// Validate reports why cs is not a well-formed changeset, or nil. The error
// wraps ErrInvalid. The decoder applies the same rules and wraps ErrCorrupt
// instead.
func (cs *Changeset) Validate() error {
	if err := cs.validate(); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	return nil
}

// validate returns a bare description of the first rule broken.
func (cs *Changeset) validate() error {
	if cs.Origin == uuid.Nil {
		return errorString("origin replica UUID is nil")
	}
	if cs.OriginSeq == 0 {
		return errorString("origin sequence number is 0 (sequences start at 1)")
	}
	if ns := cs.Created.UnixNano(); !time.Unix(0, ns).Equal(cs.Created) {
		return errorString("creation time outside the years 1678-2262 that Unix nanoseconds can hold")
	}
	if len(cs.Creator) > MaxCreatorLen || !utf8.ValidString(cs.Creator) {
		return errorString("creator is too long or not UTF-8")
	}
	if len(cs.Changes) == 0 {
		return errorString("changeset has no changes")
	}
	for i := range cs.Changes {
		c := &cs.Changes[i]
		if err := wire.ValidName("record type", c.RecordType, MaxNameLen); err != nil {
			return err
		}
		if c.Record == uuid.Nil {
			return errorString("record UUID is nil")
		}
		if i > 0 {
			switch cmp := compareChanges(cs.Changes[i-1], *c); {
			case cmp == 0:
				return fmt.Errorf("two changes to the same record %s %s", c.RecordType, c.Record)
			case cmp > 0:
				return errorString("changes are not in canonical order (call Normalize)")
			}
		}
		if err := c.validate(); err != nil {
			return fmt.Errorf("record %s %s: %w", c.RecordType, c.Record, err)
		}
	}
	return nil
}

func (c *Change) validate() error {
	switch c.Op {
	case Add, Update, Delete:
	default:
		return fmt.Errorf("unknown change type %d", c.Op)
	}
	if c.Op == Update && len(c.Props) == 0 {
		return errorString("update changes no property")
	}
	for j, p := range c.Props {
		if err := wire.ValidName("property name", p.Name, MaxNameLen); err != nil {
			return err
		}
		if j > 0 {
			switch cmp := strings.Compare(c.Props[j-1].Name, p.Name); {
			case cmp == 0:
				return fmt.Errorf("property %q changed twice", p.Name)
			case cmp > 0:
				return errorString("properties are not in canonical order (call Normalize)")
			}
		}
		if !utf8.ValidString(p.Old) || !utf8.ValidString(p.New) {
			return fmt.Errorf("property %q: value is not UTF-8", p.Name)
		}
		switch {
		case c.Op == Add && (p.Old != "" || p.New == ""):
			return fmt.Errorf("property %q: an add sets a new value and nothing else", p.Name)
		case c.Op == Delete && (p.New != "" || p.Old == ""):
			return fmt.Errorf("property %q: a delete lists an old value and nothing else", p.Name)
		case c.Op == Update && p.Old == p.New:
			return fmt.Errorf("property %q: an update that changes nothing", p.Name)
		}
	}
	return nil
}

type errorString string

func (e errorString) Error() string { return string(e) }
