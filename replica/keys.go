package replica

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/google/uuid"
)

// Every key prefix of the replica's Pebble DB is here, and DESIGN.md ("Key
// layout") documents each one. Integers are big-endian so that keys sort in
// numeric order; variable-length strings are length-prefixed (uvarint) so
// that no value, whatever bytes it holds, can run into the next field.
const (
	prefixMeta    = 'M' // M name                          -> value (meta.go)
	prefixLog     = 'L' // L seq8                          -> canonical changeset bytes
	prefixOrigin  = 'O' // O origin16 originSeq8           -> seq8 (identity index; changesets from other origins only)
	prefixTicket  = 'T' // T origin16                      -> seq8 (merge ticket)
	prefixPeer    = 'V' // V peer16                        -> seq8 (position reached in a peer's log)
	prefixRecord  = 'R' // R lp(type) uuid16               -> record state, live or deleted (state.go)
	prefixHistory = 'H' // H lp(type) uuid16 seq8          -> "" (changesets touching a record)
	prefixProp    = 'P' // P lp(type) lp(name) lp(value) uuid16 -> "" (property index)
	prefixLUID    = 'N' // N lp(type) luid8                -> uuid16 (a live record's LUID is in its state)
	prefixType    = 'S' // S lp(type)                      -> type stats (next LUID, live count)
)

const (
	metaReplicaUUID  = "replica-uuid"
	metaDatabaseUUID = "database-uuid"
	metaFormat       = "format"
	metaDigest       = "digest"
	metaCreated      = "created"
	metaHLC          = "hlc" // int64: the greatest Created in the log (the hybrid logical clock)
)

// formatVersion is the key-layout version in M format. Open refuses others.
const formatVersion = 2

func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendLP(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

func logKey(seq uint64) []byte { return (*arena)(nil).logKey(seq) }

func originKey(origin uuid.UUID, seq uint64) []byte {
	return appendU64(append([]byte{prefixOrigin}, origin[:]...), seq)
}

func ticketKey(origin uuid.UUID) []byte { return append([]byte{prefixTicket}, origin[:]...) }

func peerKey(peer uuid.UUID) []byte { return append([]byte{prefixPeer}, peer[:]...) }

// typePrefix is p lp(type): the start of every per-type keyspace.
func typePrefix(p byte, typ string) []byte { return (*arena)(nil).typePrefix(p, typ, 0) }

func recordKey(typ string, id uuid.UUID) []byte { return (*arena)(nil).recordKey(typ, id) }

func historyKey(typ string, id uuid.UUID, seq uint64) []byte {
	return (*arena)(nil).historyKey(typ, id, seq)
}

func propPrefix(typ, name, value string) []byte {
	return (*arena)(nil).propPrefix(typ, name, value, 0)
}

func propKey(typ, name, value string, id uuid.UUID) []byte {
	return (*arena)(nil).propKey(typ, name, value, id)
}

func luidRevKey(typ string, luid uint64) []byte { return (*arena)(nil).luidRevKey(typ, luid) }

// arena hands out the keys and values of a commit from a few shared
// chunks: the commit path makes about ten per changeset, and allocating
// each one cost more than building it. A slice from an arena is only ever
// appended to within the capacity asked for, so slices never overlap. A
// nil *arena allocates each slice by itself.
type arena struct {
	chunk []byte
	size  int // of a new chunk (0: arenaChunk)
	w     appendWriter
}

const arenaChunk = 1 << 10

// alloc returns an empty slice with room for n bytes.
func (a *arena) alloc(n int) []byte {
	if a == nil {
		return make([]byte, 0, n)
	}
	if cap(a.chunk)-len(a.chunk) < n {
		size := cmp.Or(a.size, arenaChunk)
		if n > size/4 {
			return make([]byte, 0, n) // no room wasted at a chunk's end
		}
		a.chunk = make([]byte, 0, size)
	}
	l := len(a.chunk)
	a.chunk = a.chunk[:l+n]
	return a.chunk[l : l : l+n]
}

// appendWriter is an io.Writer (and io.ByteWriter, so that msgpack writes
// to it directly) that appends to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

func uvarintLen(x uint64) int { return (bits.Len64(x|1) + 6) / 7 }

func (a *arena) logKey(seq uint64) []byte { return appendU64(append(a.alloc(9), prefixLog), seq) }

// typePrefix is p lp(type), with room for more bytes after it.
func (a *arena) typePrefix(p byte, typ string, more int) []byte {
	b := a.alloc(1 + uvarintLen(uint64(len(typ))) + len(typ) + more)
	return appendLP(append(b, p), typ)
}

func (a *arena) recordKey(typ string, id uuid.UUID) []byte {
	return append(a.typePrefix(prefixRecord, typ, 16), id[:]...)
}

func (a *arena) historyKey(typ string, id uuid.UUID, seq uint64) []byte {
	return appendU64(append(a.typePrefix(prefixHistory, typ, 24), id[:]...), seq)
}

func (a *arena) propPrefix(typ, name, value string, more int) []byte {
	b := a.typePrefix(prefixProp, typ, uvarintLen(uint64(len(name)))+len(name)+uvarintLen(uint64(len(value)))+len(value)+more)
	return appendLP(appendLP(b, name), value)
}

func (a *arena) propKey(typ, name, value string, id uuid.UUID) []byte {
	return append(a.propPrefix(typ, name, value, 16), id[:]...)
}

func (a *arena) luidRevKey(typ string, luid uint64) []byte {
	return appendU64(a.typePrefix(prefixLUID, typ, 8), luid)
}

func typeKey(typ string) []byte { return typePrefix(prefixType, typ) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] != 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// readLP reads a length-prefixed string at the start of b.
func readLP(b []byte) (string, []byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || uint64(len(b)-k) < n {
		return "", nil, fmt.Errorf("%w: bad length prefix in key %x", ErrCorrupt, b)
	}
	return string(b[k : k+int(n)]), b[k+int(n):], nil
}

// keyUUID parses the record UUID that follows prefix byte and lp(type) in
// R and H keys.
func keyUUID(key []byte) (uuid.UUID, error) {
	_, b, err := readLP(key[1:])
	if err != nil {
		return uuid.Nil, err
	}
	if len(b) < 16 {
		return uuid.Nil, fmt.Errorf("%w: short key %x", ErrCorrupt, key)
	}
	return uuid.UUID(b[:16]), nil
}

func u64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: %d-byte integer, want 8", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func errCorruptKey(k []byte) error { return fmt.Errorf("%w: malformed key %x", ErrCorrupt, k) }

func i64(b []byte) (int64, error) {
	v, err := u64(b)
	return int64(v), err
}
