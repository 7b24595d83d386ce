package httpsync

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Frames (DESIGN.md, "Wire protocol (HTTP)"). Every frame starts with a
// kind byte:
//
//	kindEnd      0  uvarint n       the end of a section: for changesets, the
//	                                last sequence number read; for
//	                                resolutions, how many were sent
//	kindItem     1  changesets: uvarint seq, uvarint len, len bytes (canonical)
//	                resolutions: uvarint len, len bytes (resolution.Encode)
//	kindProgress 2  uvarint seq     changesets read up to seq, nothing more to
//	                                send before it (also a keep-alive)
//	kindError    3  uvarint len, message: the server failed mid-stream
//	kindHeader   4  uvarint len, JSON: the pusher's info (push bodies)
//
// A stream that ends before its end frame is torn, never complete.
const (
	kindEnd      = 0
	kindItem     = 1
	kindProgress = 2
	kindError    = 3
	kindHeader   = 4
)

// maxItem bounds one frame's payload: a changeset's canonical encoding is at
// most 16 MiB (changeset.Decode refuses more).
const maxItem = 16<<20 + 1024

// errMalformed marks a stream that breaks the framing: from a pusher, a 400.
var errMalformed = errors.New("malformed stream")

// errTorn is a stream that ended before its end frame.
var errTorn = fmt.Errorf("%w: it ends before its end frame (truncated)", errMalformed)

// frameWriter writes frames into a buffered writer.
type frameWriter struct {
	w   *bufio.Writer
	tmp [2 * binary.MaxVarintLen64]byte
}

func (f *frameWriter) uvarint(v uint64) error {
	n := binary.PutUvarint(f.tmp[:], v)
	_, err := f.w.Write(f.tmp[:n])
	return err
}

func (f *frameWriter) kind(k byte) error { return f.w.WriteByte(k) }

// bytes writes a uvarint length and b.
func (f *frameWriter) bytes(b []byte) error {
	if err := f.uvarint(uint64(len(b))); err != nil {
		return err
	}
	_, err := f.w.Write(b)
	return err
}

func (f *frameWriter) changeset(seq uint64, raw []byte) error {
	if err := f.kind(kindItem); err != nil {
		return err
	}
	if err := f.uvarint(seq); err != nil {
		return err
	}
	return f.bytes(raw)
}

func (f *frameWriter) resolution(enc []byte) error {
	if err := f.kind(kindItem); err != nil {
		return err
	}
	return f.bytes(enc)
}

func (f *frameWriter) number(kind byte, n uint64) error {
	if err := f.kind(kind); err != nil {
		return err
	}
	return f.uvarint(n)
}

func (f *frameWriter) message(kind byte, msg []byte) error {
	if err := f.kind(kind); err != nil {
		return err
	}
	return f.bytes(msg)
}

// frameReader reads frames. Any end of input inside or between frames is
// errTorn (wrapping io.ErrUnexpectedEOF): only an end frame ends a section.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// torn turns an end of input into errTorn and keeps other read errors
// (a cut connection, a body over its limit) as they are.
func torn(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w (%w)", errTorn, io.ErrUnexpectedEOF)
	}
	return err
}

func (f *frameReader) kind() (byte, error) {
	k, err := f.r.ReadByte()
	if err != nil {
		return 0, torn(err)
	}
	if k > kindHeader {
		return 0, fmt.Errorf("%w: unknown frame kind %d", errMalformed, k)
	}
	return k, nil
}

func (f *frameReader) uvarint() (uint64, error) {
	v, err := binary.ReadUvarint(f.r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, torn(err)
		}
		if strings.Contains(err.Error(), "overflow") { // binary's errOverflow
			return 0, fmt.Errorf("%w: a number overflows 64 bits", errMalformed)
		}
		return 0, err
	}
	return v, nil
}

// bytes reads a uvarint length and that many bytes, valid until the next
// call.
func (f *frameReader) bytes(limit int) ([]byte, error) {
	n, err := f.uvarint()
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: a frame of %d bytes (at most %d)", errMalformed, n, limit)
	}
	if uint64(cap(f.buf)) < n {
		f.buf = make([]byte, n)
	}
	f.buf = f.buf[:n]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return nil, torn(err)
	}
	return f.buf, nil
}

// atEOF reports whether nothing follows.
func (f *frameReader) atEOF() error {
	if _, err := f.r.ReadByte(); err == nil {
		return fmt.Errorf("%w: bytes after the end", errMalformed)
	} else if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}
