package replica

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/prophet-sync/prophet/changeset"
)

// Prop is one property of a record. Value is never "" (absent properties are
// not stored).
type Prop struct {
	Name  string
	Value string
}

// stamp orders every write to a record for last-writer-wins (DESIGN.md,
// "Merge"): the changeset's creation time, which the hybrid logical clock
// makes greater than that of every changeset its replica held when it was
// made, then its origin and origin sequence number to break ties. Every
// replica compares the same stamps, so the winner of each register is the
// same everywhere, whatever order the changesets arrived in.
type stamp struct {
	T int64 // Created, Unix ns
	O uuid.UUID
	S uint64 // OriginSeq
}

func stampOf(cs *changeset.Changeset) stamp {
	return stamp{T: cs.Created.UnixNano(), O: cs.Origin, S: cs.OriginSeq}
}

func (a stamp) cmp(b stamp) int {
	if c := cmp.Compare(a.T, b.T); c != 0 {
		return c
	}
	if c := bytes.Compare(a.O[:], b.O[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.S, b.S)
}

// reg is one property register: the value of its last writer (by stamp),
// "" for absent.
type reg struct {
	Name  string
	Value string
	K     stamp
}

// state is the value of a record's R key: every register of the record, live
// or not, and the visible state derived from them. A record is a set of
// last-writer-wins registers: one for being live (written by adds and
// deletes) and one per property. A live record shows the properties whose
// writer is not older than the add that made it live, so a record deleted
// and added again does not show the properties of its earlier life.
type state struct {
	Creator string    // creator of the changeset that added the record
	Origin  uuid.UUID // replica that wrote that changeset
	Created int64     // its creation time, Unix ns
	LUID    uint64    // assigned when the record last became live here
	Live    bool
	LiveK   stamp // writer of Live
	// AddK is the latest add's stamp: the start of the record's latest
	// life, which a deleted record needs to tell what it had (liveRegs).
	AddK stamp
	Regs []reg // sorted by Name
	// Props is the visible state: for a live record, the registers with a
	// value whose writer is not older than LiveK. Derived, not stored.
	Props []Prop
}

// visible returns s if it is a live record, else nil.
func (s *state) visible() *state {
	if s == nil || !s.Live {
		return nil
	}
	return s
}

func (s *state) get(name string) string {
	i, ok := slices.BinarySearchFunc(s.Props, name, func(p Prop, n string) int { return strings.Compare(p.Name, n) })
	if !ok {
		return ""
	}
	return s.Props[i].Value
}

// write sets register name to value if k is newer than its writer.
func (s *state) write(name, value string, k stamp) {
	i, ok := slices.BinarySearchFunc(s.Regs, name, func(r reg, n string) int { return strings.Compare(r.Name, n) })
	switch {
	case !ok:
		s.Regs = slices.Insert(s.Regs, i, reg{name, value, k})
	case k.cmp(s.Regs[i].K) > 0:
		s.Regs[i].Value, s.Regs[i].K = value, k
	}
}

// derive recomputes Props from the registers.
func (s *state) derive() {
	s.Props = s.Props[:0]
	if !s.Live {
		s.Props = nil
		return
	}
	for _, r := range s.Regs {
		if r.Value != "" && r.K.cmp(s.LiveK) >= 0 {
			s.Props = append(s.Props, Prop{r.Name, r.Value})
		}
	}
}

func (s *state) clone() *state {
	return s.cloneGrow(0)
}

// cloneGrow is clone with room for n more registers.
func (s *state) cloneGrow(n int) *state {
	c := *s
	c.Regs = append(make([]reg, 0, len(s.Regs)+n), s.Regs...)
	c.Props = append(make([]Prop, 0, len(s.Regs)+n), s.Props...)
	return &c
}

// encodeState is the R value: msgpack [creator, origin bin16, created int,
// luid uint, live bool, live-writer index, latest-add index, [stamps: t,
// origin bin16, seq, ...], [registers: name, value, writer index, ...]].
// Stamps are stored once each: a record's registers mostly share a few
// writers.
func encodeState(a *arena, s *state) []byte {
	size := 64 + len(s.Creator)
	for _, r := range s.Regs {
		size += 8 + len(r.Name) + len(r.Value)
	}
	var ksArr [4]stamp // a record's registers mostly share a few writers
	ks := ksArr[:0]
	idx := func(k stamp) int {
		for i, x := range ks {
			if x == k {
				return i
			}
		}
		ks = append(ks, k)
		return len(ks) - 1
	}
	liveIdx, addIdx := idx(s.LiveK), idx(s.AddK)
	for _, r := range s.Regs {
		idx(r.K)
	}
	var w *appendWriter
	if a != nil {
		w = &a.w
	} else {
		w = new(appendWriter)
	}
	w.b = a.alloc(size + 32*len(ks))
	e := msgpack.GetEncoder()
	defer func() {
		e.Reset(nil) // the pool keeps the encoder, not the arena
		msgpack.PutEncoder(e)
	}()
	e.Reset(w)
	e.UseCompactInts(true)
	e.EncodeArrayLen(9)
	e.EncodeString(s.Creator)
	e.EncodeBytes(s.Origin[:])
	e.EncodeInt(s.Created)
	e.EncodeUint(s.LUID)
	e.EncodeBool(s.Live)
	e.EncodeInt(int64(liveIdx))
	e.EncodeInt(int64(addIdx))
	e.EncodeArrayLen(3 * len(ks))
	for _, k := range ks {
		e.EncodeInt(k.T)
		e.EncodeBytes(k.O[:])
		e.EncodeUint(k.S)
	}
	e.EncodeArrayLen(3 * len(s.Regs))
	for _, r := range s.Regs {
		e.EncodeString(r.Name)
		e.EncodeString(r.Value)
		e.EncodeInt(int64(idx(r.K)))
	}
	b := w.b
	w.b = nil
	return b
}

func decodeState(b []byte) (*state, error) {
	d := msgpack.NewDecoder(bytes.NewReader(b))
	bad := func(err error) (*state, error) {
		return nil, fmt.Errorf("%w: record state: %v", ErrCorrupt, err)
	}
	n, err := d.DecodeArrayLen()
	if err != nil || n != 9 {
		return bad(fmt.Errorf("header %d, %v", n, err))
	}
	s := &state{}
	if s.Creator, err = d.DecodeString(); err != nil {
		return bad(err)
	}
	if err := decodeUUID(d, &s.Origin); err != nil {
		return bad(fmt.Errorf("origin: %v", err))
	}
	if s.Created, err = d.DecodeInt64(); err != nil {
		return bad(err)
	}
	if s.LUID, err = d.DecodeUint64(); err != nil {
		return bad(err)
	}
	if s.Live, err = d.DecodeBool(); err != nil {
		return bad(err)
	}
	liveIdx, err := d.DecodeInt()
	if err != nil {
		return bad(err)
	}
	addIdx, err := d.DecodeInt()
	if err != nil {
		return bad(err)
	}
	m, err := d.DecodeArrayLen()
	if err != nil || m < 0 || m%3 != 0 || m > len(b) {
		return bad(fmt.Errorf("stamps length %d: %v", m, err))
	}
	ks := make([]stamp, m/3)
	for i := range ks {
		if ks[i].T, err = d.DecodeInt64(); err != nil {
			return bad(err)
		}
		if err := decodeUUID(d, &ks[i].O); err != nil {
			return bad(err)
		}
		if ks[i].S, err = d.DecodeUint64(); err != nil {
			return bad(err)
		}
	}
	at := func(i int) (stamp, error) {
		if i < 0 || i >= len(ks) {
			return stamp{}, fmt.Errorf("stamp index %d of %d", i, len(ks))
		}
		return ks[i], nil
	}
	if s.LiveK, err = at(liveIdx); err != nil {
		return bad(err)
	}
	if s.AddK, err = at(addIdx); err != nil {
		return bad(err)
	}
	if m, err = d.DecodeArrayLen(); err != nil || m < 0 || m%3 != 0 || m > len(b) {
		return bad(fmt.Errorf("registers length %d: %v", m, err))
	}
	s.Regs = make([]reg, m/3)
	for i := range s.Regs {
		r := &s.Regs[i]
		if r.Name, err = d.DecodeString(); err != nil {
			return bad(err)
		}
		if r.Value, err = d.DecodeString(); err != nil {
			return bad(err)
		}
		k, err := d.DecodeInt()
		if err != nil {
			return bad(err)
		}
		if r.K, err = at(k); err != nil {
			return bad(err)
		}
	}
	s.derive()
	return s, nil
}

func decodeUUID(d *msgpack.Decoder, id *uuid.UUID) error {
	b, err := d.DecodeBytes()
	if err != nil {
		return err
	}
	if len(b) != 16 {
		return fmt.Errorf("%d bytes, want 16", len(b))
	}
	copy(id[:], b)
	return nil
}

// digest is an order-independent hash of a set of records: the sum, modulo
// 2^256, of a SHA-256 per live record over its type, UUID and properties. A
// commit adds the new state's hash and subtracts the old one's, so keeping
// it current costs two hashes per changed record, and two replicas compare
// their whole state by comparing 32 bytes. Creator, origin and LUID are left
// out: they are bookkeeping, not the record's content.
type digest [4]uint64 // little-endian limbs

func recordHash(typ string, id uuid.UUID, props []Prop) digest {
	// The hash is over lp(type) id (lp(name) lp(value))..., built in one
	// buffer (on the stack for a typical record) and hashed at once.
	var arr [512]byte
	b := appendLP(arr[:0], typ)
	b = append(b, id[:]...)
	for _, p := range props {
		b = appendLP(appendLP(b, p.Name), p.Value)
	}
	sum := sha256.Sum256(b)
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

// liveRegs returns what a record had in its latest life: the registers with
// a value written since the latest add. For a live record these are its
// visible properties; for a deleted one, what bringing it back restores.
func (s *state) liveRegs() []reg {
	if s == nil {
		return nil
	}
	var out []reg
	for _, g := range s.Regs {
		if g.Value != "" && g.K.cmp(s.AddK) >= 0 {
			out = append(out, g)
		}
	}
	return out
}
