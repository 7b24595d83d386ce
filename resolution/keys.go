package resolution

import (
	"encoding/binary"
	"fmt"

	"github.com/google/uuid"
)

// Every key prefix of the resolution database is here; doc.go documents the
// layout. Integers are big-endian so that keys sort in numeric order.
const (
	prefixMeta        = 'M' // M name                   -> value
	prefixDecision    = 'D' // D origin16 seq8          -> encoded decision
	prefixFingerprint = 'F' // F fingerprint32 origin16 seq8 -> "" (for Lookup)
)

const (
	metaFormat = "format"       // "1"
	metaOwner  = "replica-uuid" // the owner replica's UUID, 16 bytes
)

// formatVersion is the key-layout version in M format. Open refuses others.
const formatVersion = 1

const (
	dKeyLen = 1 + 16 + 8
	fKeyLen = 1 + 32 + 16 + 8
)

func metaKey(name string) []byte { return append([]byte{prefixMeta}, name...) }

// appendID appends origin16 seq8, the tail of every D and F key.
func appendID(b []byte, origin uuid.UUID, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, origin[:]...), seq)
}

func dKey(origin uuid.UUID, seq uint64) []byte {
	return appendID(append(make([]byte, 0, dKeyLen), prefixDecision), origin, seq)
}

func fKey(f Fingerprint, origin uuid.UUID, seq uint64) []byte {
	return appendID(append([]byte{prefixFingerprint}, f[:]...), origin, seq)
}

// parseID reads the origin16 seq8 that ends a key of length n.
func parseID(k []byte, n int) (uuid.UUID, uint64, error) {
	if len(k) != n {
		return uuid.Nil, 0, fmt.Errorf("%w: malformed key %x", ErrCorrupt, k)
	}
	id := k[n-24:]
	return uuid.UUID(id[:16]), binary.BigEndian.Uint64(id[16:]), nil
}

// originEnd is the smallest key after every D key of the origin of D key k.
func originEnd(k []byte) []byte { return prefixEnd(k[:17]) }

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
