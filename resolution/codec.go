package resolution

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/internal/wire"
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
// integers (wire.Writer), never by reflection, so the bytes depend on nothing
// but the values:
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
	w := writer{wire.NewWriter(buf)}
	w.ArrayLen(7)
	w.Uint(FormatVersion)
	w.Bytes(d.Origin[:])
	w.Uint(d.Seq)
	w.Int(d.Stamp)
	w.Str(d.How)
	w.ArrayLen(5)
	w.Str(d.Conflict.Type)
	w.Bytes(d.Conflict.Record[:])
	w.props(d.Conflict.Base)
	w.outcome(d.Conflict.Source)
	w.outcome(d.Conflict.Target)
	w.outcome(d.Final)
	if err := w.Err(); err != nil {
		return dst, fmt.Errorf("resolution: encode: %w", err)
	}
	if n := buf.Len() - start; n > MaxEncodedSize {
		return dst, fmt.Errorf("%w: %s@%d: %d bytes encoded, more than the limit of %d", ErrInvalid, d.Origin, d.Seq, n, MaxEncodedSize)
	}
	return buf.Bytes(), nil
}

// writer adds the decision's compound parts to wire.Writer.
type writer struct{ *wire.Writer }

func (w writer) props(ps []Prop) {
	w.ArrayLen(2 * len(ps))
	for _, p := range ps {
		w.Str(p.Name)
		w.Str(p.Value)
	}
}

func (w writer) outcome(o Outcome) {
	w.ArrayLen(2)
	w.Bool(o.Live)
	w.props(o.Props)
}

// Decode parses one canonically encoded decision and computes its
// Fingerprint. Every failure wraps ErrCorrupt and none panics: lengths are
// checked against the bytes that remain before anything is allocated
// (wire.Reader), and the input must be exactly what Encode makes of the
// decoded value (no trailing bytes, no longer integer forms, sorted
// properties, a known version), so a decision has exactly one encoding.
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
	// Strings are read without a UTF-8 check: validate makes it, naming
	// the field.
	r := reader{wire.NewReader(b)}
	r.Array(7, "decision")
	if v := r.Uint(); v != FormatVersion && r.Err() == nil {
		return nil, fmt.Errorf("unknown format version %d (this prophet reads %d; upgrade prophet)", v, FormatVersion)
	}
	d := &Decision{Origin: r.UUID(), Seq: r.Uint(), Stamp: r.Int(), How: r.Str()}
	c := &d.Conflict
	r.Array(5, "conflict")
	c.Type, c.Record, c.Base = r.Str(), r.UUID(), r.props()
	c.Source, c.Target, d.Final = r.outcome(), r.outcome(), r.outcome()
	if err := r.Err(); err != nil {
		return nil, err
	}
	if n := r.Remaining(); n != 0 {
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

// reader adds the decision's compound parts to wire.Reader.
type reader struct{ *wire.Reader }

func (r reader) props() []Prop {
	n := r.ArrayLen()
	if n%2 != 0 {
		r.Fail(fmt.Errorf("property array has %d elements, want name-value pairs", n))
	}
	if r.Err() != nil || n == 0 {
		return nil
	}
	// Grown as pairs actually decode, so a count the input cannot back
	// costs nothing.
	ps := make([]Prop, 0, min(n/2, 16))
	for i := 0; i < n/2 && r.Err() == nil; i++ {
		ps = append(ps, Prop{Name: r.Str(), Value: r.Str()})
	}
	return ps
}

func (r reader) outcome() Outcome {
	r.Array(2, "outcome")
	live := r.Bool()
	return Outcome{Live: live, Props: r.props()}
}
