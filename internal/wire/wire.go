// Package wire holds what prophet's canonical msgpack encodings share: a
// Writer that writes them element by element with pinned settings, a strict
// Reader for decoding them from bytes that may come from disk or from a peer,
// and the rule for record type and property names.
//
// changeset and resolution each define their own format on top of it and wrap
// its errors in their own ErrCorrupt. This package imports nothing else of
// prophet's.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// Writer writes msgpack element by element, never through reflection, so the
// bytes depend on nothing but the values written. Integers take the smallest
// msgpack form, as the msgpack spec recommends. It keeps the first error, so
// an encoder reads as the format it writes.
type Writer struct {
	e   *msgpack.Encoder
	err error
}

// NewWriter returns a Writer to w.
func NewWriter(w io.Writer) *Writer {
	e := msgpack.NewEncoder(w)
	e.UseCompactInts(true)
	return &Writer{e: e}
}

var writers = sync.Pool{New: func() any { return &Writer{e: msgpack.NewEncoder(nil)} }}

// GetWriter is NewWriter from a pool: the commit path encodes a changeset
// per commit, and a new encoder each time was a tenth of its garbage. Give
// it back with PutWriter once done.
func GetWriter(w io.Writer) *Writer {
	x := writers.Get().(*Writer)
	x.e.Reset(w)
	x.e.UseCompactInts(true)
	x.err = nil
	return x
}

// PutWriter returns w, which must not be used afterwards, to the pool.
func PutWriter(w *Writer) {
	w.e.Reset(nil)
	writers.Put(w)
}

// Err returns the first error, or nil.
func (w *Writer) Err() error { return w.err }

func (w *Writer) do(err error) {
	if w.err == nil {
		w.err = err
	}
}

// ArrayLen writes an array header; the others each write one value.
func (w *Writer) ArrayLen(n int) { w.do(w.e.EncodeArrayLen(n)) }
func (w *Writer) Uint(v uint64)  { w.do(w.e.EncodeUint(v)) }
func (w *Writer) Int(v int64)    { w.do(w.e.EncodeInt(v)) }
func (w *Writer) Bool(v bool)    { w.do(w.e.EncodeBool(v)) }
func (w *Writer) Str(s string)   { w.do(w.e.EncodeString(s)) }
func (w *Writer) Bytes(b []byte) { w.do(w.e.EncodeBytes(b)) }

// Reader wraps a msgpack Decoder over an in-memory buffer. It checks every
// length against the bytes left before the decoder allocates, so a hostile
// length costs nothing, and keeps the first error, after which every read
// returns a zero value. Errors are bare descriptions ("truncated", "nil where
// an array belongs"...) for the caller to wrap.
type Reader struct {
	br  *bytes.Reader
	d   *msgpack.Decoder
	err error
}

// NewReader returns a Reader of b.
func NewReader(b []byte) *Reader {
	br := bytes.NewReader(b)
	// bytes.Reader is an io.ByteScanner, so the decoder reads it directly
	// with no buffering of its own: br.Len() is exactly what is left.
	return &Reader{br: br, d: msgpack.NewDecoder(br)}
}

// Err returns the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Remaining returns the number of bytes not yet read.
func (r *Reader) Remaining() int { return r.br.Len() }

// Fail records err unless an error is already recorded or err is nil. An end
// of input becomes "truncated".
func (r *Reader) Fail(err error) {
	if r.err == nil && err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("truncated")
		}
		r.err = err
	}
}

// ArrayLen reads an array header and refuses a count the remaining input
// cannot hold (every element takes at least one byte).
func (r *Reader) ArrayLen() int { return r.ArrayLenMin(1) }

// ArrayLenMin reads an array header whose elements each take at least least
// bytes, and refuses a count the remaining input cannot hold.
func (r *Reader) ArrayLenMin(least int) int {
	if r.err != nil {
		return 0
	}
	n, err := r.d.DecodeArrayLen()
	switch {
	case err != nil:
		r.Fail(err)
	case n < 0:
		r.Fail(errors.New("nil where an array belongs"))
	case n > r.Remaining()/least:
		r.Fail(fmt.Errorf("truncated: array of %d elements does not fit in the %d bytes left", n, r.Remaining()))
	default:
		return n
	}
	return 0
}

// Array reads an array header that must announce want elements; what names
// the array in the error ("WHAT array has N elements, want WANT").
func (r *Reader) Array(want int, what string) {
	if n := r.ArrayLen(); n != want && r.err == nil {
		r.Fail(fmt.Errorf("%s array has %d elements, want %d", what, n, want))
	}
}

// Uint reads an unsigned integer of any msgpack width.
func (r *Reader) Uint() uint64 { return read(r, r.d.DecodeUint64) }

// Int reads an integer of any msgpack width.
func (r *Reader) Int() int64 { return read(r, r.d.DecodeInt64) }

// Bool reads a boolean.
func (r *Reader) Bool() bool { return read(r, r.d.DecodeBool) }

// read calls one of the Decoder's fixed-size reads unless r has failed.
func read[T any](r *Reader, f func() (T, error)) T {
	var v T
	if r.err == nil {
		var err error
		v, err = f()
		r.Fail(err)
	}
	return v
}

// Raw reads a str or bin payload after checking its length against the
// input, and refuses nil.
func (r *Reader) Raw() []byte {
	if r.err != nil {
		return nil
	}
	n, err := r.d.DecodeBytesLen()
	switch {
	case err != nil:
		r.Fail(err)
		return nil
	case n < 0:
		r.Fail(errors.New("nil where a string belongs"))
		return nil
	case n > r.Remaining():
		r.Fail(fmt.Errorf("truncated: string of %d bytes does not fit in the %d bytes left", n, r.Remaining()))
		return nil
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r.br, b)
	r.Fail(err)
	return b
}

// Str reads a str or bin payload as a string, without checking that it is
// UTF-8; see UTF8.
func (r *Reader) Str() string { return string(r.Raw()) }

// UTF8 reads a string and refuses one that is not UTF-8.
func (r *Reader) UTF8() string {
	b := r.Raw()
	if r.err == nil && !utf8.Valid(b) {
		r.Fail(errors.New("string is not UTF-8"))
	}
	return string(b)
}

// UUID reads a 16-byte str or bin payload as a UUID.
func (r *Reader) UUID() uuid.UUID {
	b := r.Raw()
	if r.err == nil && len(b) != 16 {
		r.Fail(fmt.Errorf("invalid UUID: %d bytes, want 16", len(b)))
	}
	if r.err != nil {
		return uuid.Nil
	}
	return uuid.UUID(b)
}

// ValidName checks a record type or property name: 1 to max bytes of UTF-8.
// what names it in the error ("empty WHAT", "WHAT longer than MAX bytes",
// "WHAT is not UTF-8").
func ValidName(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("empty %s", what)
	case len(s) > max:
		return fmt.Errorf("%s longer than %d bytes", what, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not UTF-8", what)
	}
	return nil
}
