package resolution

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// Decision is one recorded settlement of a conflict. It is identified
// everywhere by (Origin, Seq).
type Decision struct {
	Origin      uuid.UUID // replica that decided
	Seq         uint64    // per-origin sequence number, from 1
	Stamp       int64     // when decided, Unix ns (a hybrid logical clock value from the caller); > 0
	Fingerprint Fingerprint
	Conflict    Conflict // as the deciding replica saw it (for display: prophet conflicts)
	Final       Outcome  // the settled state of the conflict's properties
	How         string   // how it was decided: "mine", "theirs", "resolver:NAME"...; 1 to MaxHowLen bytes
}

// FormatVersion is the first element of every encoded decision. A decoder
// refuses versions it does not know rather than guess.
const FormatVersion = 1

// Encode appends the canonical encoding of d to dst and returns it. d must be
// valid, or the error wraps ErrInvalid: Origin and Stamp set and Seq >= 1; How
// 1 to MaxHowLen bytes of UTF-8; a record type and property names of 1 to
// MaxNameLen bytes of UTF-8, Base sorted by name with each name once; Source,
// Target and Final listing exactly Base's names, with no value where the
// record is not live; Fingerprint equal to d.Conflict.Fingerprint().
//
// The encoding is one msgpack array, written element by element with compact
// integers, never by reflection, so the bytes depend on nothing but the
// values:
//
//	[ FormatVersion, origin bin16, seq uint, stamp int, how str,
//	  [ type str, record bin16, base props, source outcome, target outcome ],
//	  final outcome ]
//	outcome = [ live bool, props ]
//	props   = [ name str, value str, name str, value str, ... ]  (sorted by name)
//
// The fingerprint is not in it: Decode computes it from the conflict.
func Encode(dst []byte, d *Decision) ([]byte, error) {
	if err := d.validate(); err != nil {
		return dst, fmt.Errorf("%w: %s@%d: %v", ErrInvalid, d.Origin, d.Seq, err)
	}
	start := len(dst)
	buf := bytes.NewBuffer(dst)
	e := msgpack.NewEncoder(buf)
	e.UseCompactInts(true)
	w := writer{e: e}
	w.do(e.EncodeArrayLen(7))
	w.do(e.EncodeUint(FormatVersion))
	w.do(e.EncodeBytes(d.Origin[:]))
	w.do(e.EncodeUint(d.Seq))
	w.do(e.EncodeInt(d.Stamp))
	w.do(e.EncodeString(d.How))
	w.do(e.EncodeArrayLen(5))
	w.do(e.EncodeString(d.Conflict.Type))
	w.do(e.EncodeBytes(d.Conflict.Record[:]))
	w.props(d.Conflict.Base)
	w.outcome(d.Conflict.Source)
	w.outcome(d.Conflict.Target)
	w.outcome(d.Final)
	if w.err != nil {
		return dst, fmt.Errorf("resolution: encode: %w", w.err)
	}
	if n := buf.Len() - start; n > MaxEncodedSize {
		return dst, fmt.Errorf("%w: %s@%d: %d bytes encoded, more than the limit of %d", ErrInvalid, d.Origin, d.Seq, n, MaxEncodedSize)
	}
	return buf.Bytes(), nil
}

// writer keeps the first error.
type writer struct {
	e   *msgpack.Encoder
	err error
}

func (w *writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *writer) props(ps []Prop) {
	w.do(w.e.EncodeArrayLen(2 * len(ps)))
	for _, p := range ps {
		w.do(w.e.EncodeString(p.Name))
		w.do(w.e.EncodeString(p.Value))
	}
}

func (w *writer) outcome(o Outcome) {
	w.do(w.e.EncodeArrayLen(2))
	w.do(w.e.EncodeBool(o.Live))
	w.props(o.Props)
}

// Decode parses one canonically encoded decision and computes its
// Fingerprint. Every failure wraps ErrCorrupt and none panics: lengths are
// checked against the bytes that remain before anything is allocated, and
// the input must be exactly what Encode makes of the decoded value (no
// trailing bytes, no longer integer forms, sorted properties, a known
// version), so a decision has exactly one encoding.
func Decode(b []byte) (*Decision, error) {
	d, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return d, nil
}

func decode(b []byte) (*Decision, error) {
	if len(b) > MaxEncodedSize {
		return nil, fmt.Errorf("%d bytes, more than the limit of %d", len(b), MaxEncodedSize)
	}
	r := &reader{br: bytes.NewReader(b)}
	// bytes.Reader is an io.ByteScanner, so the decoder reads it directly
	// with no buffer of its own: br.Len() is exactly what is left.
	r.d = msgpack.NewDecoder(r.br)
	r.array(7, "decision")
	if v := read(r, r.d.DecodeUint64); v != FormatVersion && r.err == nil {
		return nil, fmt.Errorf("unknown format version %d (this prophet reads %d; upgrade prophet)", v, FormatVersion)
	}
	d := &Decision{Origin: r.uuid(), Seq: read(r, r.d.DecodeUint64), Stamp: read(r, r.d.DecodeInt64), How: r.str()}
	c := &d.Conflict
	r.array(5, "conflict")
	c.Type, c.Record, c.Base = r.str(), r.uuid(), r.props()
	c.Source, c.Target, d.Final = r.outcome(), r.outcome(), r.outcome()
	if r.err != nil {
		return nil, r.err
	}
	if n := r.br.Len(); n != 0 {
		return nil, fmt.Errorf("%d trailing bytes after the decision", n)
	}
	d.Fingerprint = c.Fingerprint()
	if err := d.validate(); err != nil {
		return nil, err
	}
	// One decision, one encoding: refuse any other spelling of the same
	// values (a uint32 where a fixint fits, a str16 for a short string...).
	canon, err := Encode(make([]byte, 0, len(b)), d)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, errors.New("not in canonical encoding (same values, different bytes)")
	}
	return d, nil
}

// reader wraps a msgpack Decoder over an in-memory buffer. It checks every
// length against the bytes left before the decoder allocates, and keeps the
// first error, after which every read returns a zero value.
type reader struct {
	br  *bytes.Reader
	d   *msgpack.Decoder
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil && err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("truncated")
		}
		r.err = err
	}
}

// arrayLen reads an array header and refuses a count the remaining input
// cannot hold (every element takes at least one byte).
func (r *reader) arrayLen() int {
	if r.err != nil {
		return 0
	}
	n, err := r.d.DecodeArrayLen()
	switch {
	case err != nil:
		r.fail(err)
	case n < 0:
		r.fail(errors.New("nil where an array belongs"))
	case n > r.br.Len():
		r.fail(fmt.Errorf("truncated: array of %d elements does not fit in the %d bytes left", n, r.br.Len()))
	default:
		return n
	}
	return 0
}

func (r *reader) array(want int, what string) {
	if n := r.arrayLen(); n != want && r.err == nil {
		r.fail(fmt.Errorf("%s array has %d elements, want %d", what, n, want))
	}
}

func (r *reader) props() []Prop {
	n := r.arrayLen()
	if n%2 != 0 {
		r.fail(fmt.Errorf("property array has %d elements, want name-value pairs", n))
	}
	if r.err != nil || n == 0 {
		return nil
	}
	// Grown as pairs actually decode, so a count the input cannot back
	// costs nothing.
	ps := make([]Prop, 0, min(n/2, 16))
	for i := 0; i < n/2 && r.err == nil; i++ {
		ps = append(ps, Prop{Name: r.str(), Value: r.str()})
	}
	return ps
}

func (r *reader) outcome() Outcome {
	r.array(2, "outcome")
	live := read(r, r.d.DecodeBool)
	return Outcome{Live: live, Props: r.props()}
}

// read calls one of the Decoder's fixed-size reads unless r has failed.
func read[T any](r *reader, f func() (T, error)) T {
	var v T
	if r.err == nil {
		var err error
		v, err = f()
		r.fail(err)
	}
	return v
}

// raw reads a str or bin payload after checking its length against the
// input.
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
		r.fail(errors.New("nil where a string belongs"))
		return nil
	case n > r.br.Len():
		r.fail(fmt.Errorf("truncated: string of %d bytes does not fit in the %d bytes left", n, r.br.Len()))
		return nil
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r.br, b)
	r.fail(err)
	return b
}

// str reads a string; validate checks that it is UTF-8.
func (r *reader) str() string { return string(r.raw()) }

func (r *reader) uuid() uuid.UUID {
	b := r.raw()
	if r.err == nil && len(b) != 16 {
		r.fail(fmt.Errorf("invalid UUID: %d bytes, want 16", len(b)))
	}
	if r.err != nil {
		return uuid.Nil
	}
	return uuid.UUID(b)
}
