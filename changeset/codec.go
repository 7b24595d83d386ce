package changeset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/prophet-sync/prophet/internal/wire"
)

// FormatVersion is the first element of every encoded changeset. A decoder
// refuses versions it does not know rather than guess.
const FormatVersion = 1

// ErrCorrupt marks every error that comes from bytes that are not a
// well-formed encoded changeset: from disk or from a peer. Test with
// errors.Is.
var ErrCorrupt = errors.New("changeset: corrupt")

// ErrInvalid marks a changeset built in memory that breaks a rule of the data
// model (see Validate).
var ErrInvalid = errors.New("changeset: invalid")

// Hash is the SHA-256 of a changeset's canonical encoding. It is the same on
// every replica that holds the changeset.
type Hash [sha256.Size]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// HashOf returns the Hash of canonical encoded bytes, as Encode returns them.
func HashOf(encoded []byte) Hash { return sha256.Sum256(encoded) }

// Hash encodes cs and hashes the encoding.
func (cs *Changeset) Hash() (Hash, error) {
	b, err := Encode(nil, cs)
	if err != nil {
		return Hash{}, err
	}
	return HashOf(b), nil
}

// Encode appends the canonical encoding of cs to dst and returns it. cs must be
// valid (Normalize first if it was built by hand); otherwise the error wraps
// ErrInvalid.
//
// The encoding is a msgpack array written element by element through a
// wire.Writer, never through reflection, so the bytes depend on nothing but
// the data:
//
//	[FormatVersion, origin bin16, originSeq uint, creator str,
//	 created int (Unix ns), flags uint,
//	 [[recordType str, record bin16, op uint, [[name, old, new]...]]...]]
//
// Integers use the smallest msgpack form, as the msgpack spec recommends.
func Encode(dst []byte, cs *Changeset) ([]byte, error) {
	if err := cs.Validate(); err != nil {
		return dst, err
	}
	if dst == nil {
		dst = make([]byte, 0, encodedSizeHint(cs))
	}
	buf := bytes.NewBuffer(dst)
	w := wire.GetWriter(buf)
	defer wire.PutWriter(w)
	if err := encodeBody(w, cs); err != nil {
		return dst, fmt.Errorf("changeset: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// encodedSizeHint is a little more than cs's encoded size, so that Encode
// allocates once.
func encodedSizeHint(cs *Changeset) int {
	n := 96 + len(cs.Creator)
	for i := range cs.Changes {
		c := &cs.Changes[i]
		n += 24 + len(c.RecordType)
		for _, p := range c.Props {
			n += 12 + len(p.Name) + len(p.Old) + len(p.New)
		}
	}
	return n
}

const (
	flagNullification = 1 << 0
	flagResolution    = 1 << 1
	knownFlags        = flagNullification | flagResolution
)

func encodeBody(w *wire.Writer, cs *Changeset) error {
	var flags uint64
	if cs.IsNullification {
		flags |= flagNullification
	}
	if cs.IsResolution {
		flags |= flagResolution
	}
	w.ArrayLen(7)
	w.Uint(FormatVersion)
	w.Bytes(cs.Origin[:])
	w.Uint(cs.OriginSeq)
	w.Str(cs.Creator)
	w.Int(cs.Created.UnixNano())
	w.Uint(flags)
	w.ArrayLen(len(cs.Changes))
	for i := range cs.Changes {
		c := &cs.Changes[i]
		w.ArrayLen(4)
		w.Str(c.RecordType)
		w.Bytes(c.Record[:])
		w.Uint(uint64(c.Op))
		w.ArrayLen(len(c.Props))
		for _, p := range c.Props {
			w.ArrayLen(3)
			w.Str(p.Name)
			w.Str(p.Old)
			w.Str(p.New)
		}
	}
	return w.Err()
}

// Decode parses one canonical encoded changeset. Seq and Source are left zero.
//
// Every failure wraps ErrCorrupt and none panics. Lengths are checked against
// the bytes that remain before anything is allocated (wire.Reader), so a
// hostile length costs nothing. The input must be exactly one changeset in
// canonical form: trailing bytes, non-minimal integers, unsorted or duplicate
// records or properties, unknown flags and unknown versions are all refused,
// so that one changeset has exactly one encoding and one Hash.
func Decode(b []byte) (*Changeset, error) {
	cs, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return cs, nil
}

func decode(b []byte) (*Changeset, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d", len(b), MaxEncodedSize)
	}
	r := wire.NewReader(b)
	r.Array(7, "changeset")
	if v := r.Uint(); v != FormatVersion && r.Err() == nil {
		return nil, fmt.Errorf("unknown format version %d (this prophet reads %d; upgrade prophet)", v, FormatVersion)
	}
	cs := &Changeset{}
	cs.Origin = r.UUID()
	cs.OriginSeq = r.Uint()
	cs.Creator = r.UTF8()
	cs.Created = time.Unix(0, r.Int()).UTC()
	flags := r.Uint()
	if flags&^knownFlags != 0 && r.Err() == nil {
		return nil, fmt.Errorf("unknown flags %#x", flags)
	}
	cs.IsNullification = flags&flagNullification != 0
	cs.IsResolution = flags&flagResolution != 0
	// Each change takes at least 1+1+17+1+1 bytes; no count can exceed what
	// the remaining input could hold.
	// Slices grow as elements actually decode (from a small capacity), so
	// a count that the input cannot back costs nothing.
	n := r.ArrayLenMin(21)
	if r.Err() == nil && n > 0 {
		cs.Changes = make([]Change, 0, min(n, 16))
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		cs.Changes = append(cs.Changes, Change{})
		c := &cs.Changes[i]
		if m := r.ArrayLen(); m != 4 && r.Err() == nil {
			return nil, fmt.Errorf("change %d has %d elements, want 4", i, m)
		}
		c.RecordType = r.UTF8()
		c.Record = r.UUID()
		op := r.Uint()
		if op > 255 && r.Err() == nil {
			return nil, fmt.Errorf("change %d: unknown change type %d", i, op)
		}
		c.Op = Op(op)
		np := r.ArrayLenMin(4)
		if r.Err() == nil && np > 0 {
			c.Props = make([]PropChange, 0, min(np, 16))
		}
		for j := 0; j < np && r.Err() == nil; j++ {
			if m := r.ArrayLen(); m != 3 && r.Err() == nil {
				return nil, fmt.Errorf("change %d property %d has %d elements, want 3", i, j, m)
			}
			c.Props = append(c.Props, PropChange{Name: r.UTF8(), Old: r.UTF8(), New: r.UTF8()})
		}
	}
	if err := r.Err(); err != nil {
		return nil, err
	}
	if rest := r.Remaining(); rest != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the changeset", rest)
	}
	if err := cs.validate(); err != nil {
		return nil, err
	}
	// One changeset, one encoding: refuse any other spelling of the same
	// values (a uint32 where a fixint fits, a str16 for a short string...).
	canon, err := Encode(make([]byte, 0, len(b)), cs)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, errorString("not in canonical encoding (same values, different bytes)")
	}
	return cs, nil
}

// PeekID reads only the identity (Origin, OriginSeq) at the head of an
// encoded changeset, without decoding or allocating the rest. A pull uses it
// to skip changesets the merge tickets say it has. It does not validate the
// rest of b; Decode does.
func PeekID(b []byte) (ID, error) {
	r := wire.NewReader(b)
	r.Array(7, "changeset")
	if v := r.Uint(); v != FormatVersion && r.Err() == nil {
		return ID{}, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, v)
	}
	id := ID{Origin: r.UUID(), Seq: r.Uint()}
	if err := r.Err(); err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return id, nil
}
