package replica

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"
)

// Prop is one property of a record. Value is never "" (absent properties are
// not stored).
type Prop struct {
	Name  string
	Value string
}

// state is the materialized state of one live record, the value of its R key.
type state struct {
	Creator string    // creator of the changeset that added the record
	Origin  uuid.UUID // replica that wrote that changeset
	Created int64     // its creation time, Unix ns
	LUID    uint64    // assigned when the record became live here
	Props   []Prop    // sorted by Name, values non-empty
}

func (s *state) get(name string) string {
	i, ok := slices.BinarySearchFunc(s.Props, name, func(p Prop, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return ""
	}
	return s.Props[i].Value
}

// set sets name to value; "" removes it. s.Props stays sorted.
func (s *state) set(name, value string) {
	i, ok := slices.BinarySearchFunc(s.Props, name, func(p Prop, n string) int { return strings.Compare(p.Name, n) })
	switch {
	case ok && value == "":
		s.Props = slices.Delete(s.Props, i, i+1)
	case ok:
		s.Props[i].Value = value
	case value != "":
		s.Props = slices.Insert(s.Props, i, Prop{name, value})
	}
}

func (s *state) clone() *state {
	c := *s
	c.Props = slices.Clone(s.Props)
	return &c
}

// encodeState is the R value: msgpack [creator, origin bin16, created int,
// luid uint, [name, value, name, value, ...]].
func encodeState(s *state) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	e.EncodeArrayLen(5)
	e.EncodeString(s.Creator)
	e.EncodeBytes(s.Origin[:])
	e.EncodeInt(s.Created)
	e.EncodeUint(s.LUID)
	e.EncodeArrayLen(2 * len(s.Props))
	for _, p := range s.Props {
		e.EncodeString(p.Name)
		e.EncodeString(p.Value)
	}
	return buf.Bytes()
}

func decodeState(b []byte) (*state, error) {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	bad := func(err error) (*state, error) {
		return nil, fmt.Errorf("%w: record state: %v", ErrCorrupt, err)
	}
	n, err := d.DecodeArrayLen()
	if err != nil || n != 5 {
		return bad(fmt.Errorf("header %d, %v", n, err))
	}
	s := &state{}
	if s.Creator, err = d.DecodeString(); err != nil {
		return bad(err)
	}
	o, err := d.DecodeBytes()
	if err != nil || len(o) != 16 {
		return bad(fmt.Errorf("origin: %v", err))
	}
	copy(s.Origin[:], o)
	if s.Created, err = d.DecodeInt64(); err != nil {
		return bad(err)
	}
	if s.LUID, err = d.DecodeUint64(); err != nil {
		return bad(err)
	}
	m, err := d.DecodeArrayLen()
	if err != nil || m < 0 || m%2 != 0 || m > len(b) {
		return bad(fmt.Errorf("props length %d: %v", m, err))
	}
	s.Props = make([]Prop, m/2)
	for i := range s.Props {
		if s.Props[i].Name, err = d.DecodeString(); err != nil {
			return bad(err)
		}
		if s.Props[i].Value, err = d.DecodeString(); err != nil {
			return bad(err)
		}
	}
	return s, nil
}

// digest is an order-independent hash of a set of records: the sum, modulo
// 2^256, of a SHA-256 per live record over its type, UUID and properties. A
// commit adds the new state's hash and subtracts the old one's, so keeping
// it current costs two hashes per changed record, and two replicas compare
// their whole state by comparing 32 bytes. Creator, origin and LUID are left
// out: they are bookkeeping, not the record's content.
type digest [4]uint64 // little-endian limbs

func recordHash(typ string, id uuid.UUID, props []Prop) digest {
	h := sha256.New()
	var lp [binary.MaxVarintLen64]byte
	w := func(s string) {
		h.Write(lp[:binary.PutUvarint(lp[:], uint64(len(s)))])
		h.Write([]byte(s))
	}
	w(typ)
	h.Write(id[:])
	for _, p := range props {
		w(p.Name)
		w(p.Value)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return digestFromBytes(sum[:])
}

func digestFromBytes(b []byte) digest {
	var d digest
	for i := range d {
		d[i] = binary.BigEndian.Uint64(b[24-8*i:])
	}
	return d
}

func (d digest) bytes() []byte {
	b := make([]byte, 32)
	for i := range d {
		binary.BigEndian.PutUint64(b[24-8*i:], d[i])
	}
	return b
}

func (d *digest) add(x digest) {
	var c uint64
	for i := range d {
		d[i], c = bits.Add64(d[i], x[i], c)
	}
}

func (d *digest) sub(x digest) {
	var b uint64
	for i := range d {
		d[i], b = bits.Sub64(d[i], x[i], b)
	}
}

// Digest is the state digest of a replica: equal digests mean equal live
// records (type, UUID and properties), whatever order they were written in.
type Digest [32]byte

func (d Digest) String() string { return fmt.Sprintf("%x", d[:]) }

func timeFromNanos(ns int64) time.Time { return time.Unix(0, ns).UTC() }
