package changeset

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
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
// Decoder-independent Encoder with pinned settings, never through reflection,
// so the bytes depend on nothing but the data:
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
	buf := bytes.NewBuffer(dst)
	e := msgpack.NewEncoder(buf)
	e.UseCompactInts(true)
	err := encodeBody(e, cs)
	if err != nil {
		return dst, fmt.Errorf("changeset: encode: %w", err)
	}
	return buf.Bytes(), nil
}

const (
	flagNullification = 1 << 0
	flagResolution    = 1 << 1
	knownFlags        = flagNullification | flagResolution
)

func encodeBody(e *msgpack.Encoder, cs *Changeset) error {
	var flags uint64
	if cs.IsNullification {
		flags |= flagNullification
	}
	if cs.IsResolution {
		flags |= flagResolution
	}
	w := writer{e: e}
	w.arrayLen(7)
	w.uint(FormatVersion)
	w.bytes(cs.Origin[:])
	w.uint(cs.OriginSeq)
	w.str(cs.Creator)
	w.int(cs.Created.UnixNano())
	w.uint(flags)
	w.arrayLen(len(cs.Changes))
	for i := range cs.Changes {
		c := &cs.Changes[i]
		w.arrayLen(4)
		w.str(c.RecordType)
		w.bytes(c.Record[:])
		w.uint(uint64(c.Op))
		w.arrayLen(len(c.Props))
		for _, p := range c.Props {
			w.arrayLen(3)
			w.str(p.Name)
			w.str(p.Old)
			w.str(p.New)
		}
	}
	return w.err
}

// writer keeps the first error so encodeBody reads as the format it writes.
type writer struct {
	e   *msgpack.Encoder
	err error
}

func (w *writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}
func (w *writer) arrayLen(n int) { w.do(w.e.EncodeArrayLen(n)) }
func (w *writer) uint(v uint64)  { w.do(w.e.EncodeUint(v)) }
func (w *writer) int(v int64)    { w.do(w.e.EncodeInt(v)) }
func (w *writer) str(s string)   { w.do(w.e.EncodeString(s)) }
func (w *writer) bytes(b []byte) { w.do(w.e.EncodeBytes(b)) }

// Decode parses one canonical encoded changeset. Seq and Source are left zero.
//
// Every failure wraps ErrCorrupt and none panics. Lengths are checked against
// the bytes that remain before anything is allocated, so a hostile length
// costs nothing. The input must be exactly one changeset in canonical form:
// trailing bytes, non-minimal integers, unsorted or duplicate records or
// properties, unknown flags and unknown versions are all refused, so that one
// changeset has exactly one encoding and one Hash.
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
	r := newReader(b)
	if n := r.arrayLen(); n != 7 && r.err == nil {
		return nil, fmt.Errorf("changeset array has %d elements, want 7", n)
	}
	if v := r.uint(); v != FormatVersion && r.err == nil {
		return nil, fmt.Errorf("unknown format version %d (this prophet reads %d; upgrade prophet)", v, FormatVersion)
	}
	cs := &Changeset{}
	cs.Origin = r.uuid()
	cs.OriginSeq = r.uint()
	cs.Creator = r.str()
	cs.Created = time.Unix(0, r.int()).UTC()
	flags := r.uint()
	if flags&^knownFlags != 0 && r.err == nil {
		return nil, fmt.Errorf("unknown flags %#x", flags)
	}
	cs.IsNullification = flags&flagNullification != 0
	cs.IsResolution = flags&flagResolution != 0
	// Each change takes at least 1+1+17+1+1 bytes; no count can exceed what
	// the remaining input could hold.
	// Slices grow as elements actually decode (from a small capacity), so
	// a count that the input cannot back costs nothing.
	n := r.arrayLenMin(21)
	if r.err == nil && n > 0 {
		cs.Changes = make([]Change, 0, min(n, 16))
	}
	for i := 0; i < n && r.err == nil; i++ {
		cs.Changes = append(cs.Changes, Change{})
		c := &cs.Changes[i]
		if m := r.arrayLen(); m != 4 && r.err == nil {
			return nil, fmt.Errorf("change %d has %d elements, want 4", i, m)
		}
		c.RecordType = r.str()
		c.Record = r.uuid()
		op := r.uint()
		if op > 255 && r.err == nil {
			return nil, fmt.Errorf("change %d: unknown change type %d", i, op)
		}
		c.Op = Op(op)
		np := r.arrayLenMin(4)
		if r.err == nil && np > 0 {
			c.Props = make([]PropChange, 0, min(np, 16))
		}
		for j := 0; j < np && r.err == nil; j++ {
			if m := r.arrayLen(); m != 3 && r.err == nil {
				return nil, fmt.Errorf("change %d property %d has %d elements, want 3", i, j, m)
			}
			c.Props = append(c.Props, PropChange{Name: r.str(), Old: r.str(), New: r.str()})
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if rest := r.remaining(); rest != 0 {
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

// reader wraps a msgpack Decoder over an in-memory buffer. It checks every
// length against the bytes left before the decoder allocates, and keeps the
// first error.
type reader struct {
	br  *bytes.Reader
	d   *msgpack.Decoder
	err error
}

func newReader(b []byte) *reader {
	br := bytes.NewReader(b)
	// bytes.Reader is an io.ByteScanner, so the decoder reads it directly
	// with no buffering of its own: br.Len() is exactly what is left.
	return &reader{br: br, d: msgpack.NewDecoder(br)}
}

func (r *reader) remaining() int { return r.br.Len() }

func (r *reader) fail(err error) {
	if r.err == nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errorString("truncated")
		}
		r.err = err
	}
}

func (r *reader) arrayLen() int { return r.arrayLenMin(1) }

// arrayLenMin reads an array header whose elements each take at least min
// bytes, and refuses a count the remaining input cannot hold.
func (r *reader) arrayLenMin(min int) int {
	if r.err != nil {
		return 0
	}
	n, err := r.d.DecodeArrayLen()
	switch {
	case err != nil:
		r.fail(err)
		return 0
	case n < 0:
		r.fail(errorString("nil where an array belongs"))
		return 0
	case n > r.remaining()/min:
		r.fail(fmt.Errorf("truncated: array of %d elements does not fit in the %d bytes left", n, r.remaining()))
		return 0
	}
	return n
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, err := r.d.DecodeUint64()
	r.fail(err)
	return v
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.d.DecodeInt64()
	r.fail(err)
	return v
}

// raw reads a str or bin payload after checking its length against the input.
func (r *reader) raw() []byte {
	if r.err != nil {
		return nil
	}
	n, err := r.d.DecodeBytesLen()
	switch {
	case err != nil:
		r.fail(err)
		return nil
	case n < 0:
		r.fail(errorString("nil where a string belongs"))
		return nil
	case n > r.remaining():
		r.fail(fmt.Errorf("truncated: string of %d bytes does not fit in the %d bytes left", n, r.remaining()))
		return nil
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r.br, b)
	r.fail(err)
	return b
}

func (r *reader) str() string {
	b := r.raw()
	if r.err == nil && !utf8.Valid(b) {
		r.fail(errorString("string is not UTF-8"))
	}
	return string(b)
}

func (r *reader) uuid() uuid.UUID {
	b := r.raw()
	if r.err != nil {
		return uuid.Nil
	}
	id, err := uuid.FromBytes(b)
	if err != nil {
		r.fail(fmt.Errorf("invalid UUID: %d bytes, want 16", len(b)))
		return uuid.Nil
	}
	return id
}

// PeekID reads only the identity (Origin, OriginSeq) at the head of an
// encoded changeset, without decoding or allocating the rest. A pull uses it
// to skip changesets the merge tickets say it has. It does not validate the
// rest of b; Decode does.
func PeekID(b []byte) (ID, error) {
	r := newReader(b)
	if n := r.arrayLen(); n != 7 && r.err == nil {
		return ID{}, fmt.Errorf("%w: changeset array has %d elements, want 7", ErrCorrupt, n)
	}
	if v := r.uint(); v != FormatVersion && r.err == nil {
		return ID{}, fmt.Errorf("%w: unknown format version %d", ErrCorrupt, v)
	}
	id := ID{Origin: r.uuid(), Seq: r.uint()}
	if r.err != nil {
		return ID{}, fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	return id, nil
}
