package replica

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// The record hash is part of the stored state digest (M digest): it must
// never change, or every replica's digest stops matching a replay. This
// spells out the bytes it hashes.
func TestRecordHashBytes(t *testing.T) {
	id := uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	props := []Prop{{"owner", "alice"}, {"summary", "the button"}}
	var b []byte
	b = append(b, 3, 'b', 'u', 'g')
	b = append(b, id[:]...)
	b = append(b, 5, 'o', 'w', 'n', 'e', 'r', 5, 'a', 'l', 'i', 'c', 'e')
	b = append(b, 7, 's', 'u', 'm', 'm', 'a', 'r', 'y', 10)
	b = append(b, "the button"...)
	sum := sha256.Sum256(b)
	if got, want := recordHash("bug", id, props), digestFromBytes(sum[:]); got != want {
		t.Fatalf("recordHash = %x, want %x", got, want)
	}
	// Values longer than the stack buffer hash the same way.
	long := string(bytes.Repeat([]byte("x"), 1000))
	b = append(append(append([]byte{3, 'b', 'u', 'g'}, id[:]...), 1, 'v', 0xe8, 0x07), long...)
	sum = sha256.Sum256(b)
	if got, want := recordHash("bug", id, []Prop{{"v", long}}), digestFromBytes(sum[:]); got != want {
		t.Fatalf("recordHash of a long value = %x, want %x", got, want)
	}
}

// Slices from an arena never overlap: keys built one after another in one
// arena (some larger than a chunk's share, so made apart) keep their bytes.
func TestArenaKeysDoNotOverlap(t *testing.T) {
	var a arena
	var got, want [][]byte
	for i := range 2000 {
		typ := fmt.Sprint("type", i%7)
		id := uuid.New()
		value := string(bytes.Repeat([]byte{'v'}, i%400))
		got = append(got, a.recordKey(typ, id), a.historyKey(typ, id, uint64(i)), a.propKey(typ, "name", value, id), a.luidRevKey(typ, uint64(i)), a.logKey(uint64(i)))
		want = append(want, recordKey(typ, id), historyKey(typ, id, uint64(i)), propKey(typ, "name", value, id), luidRevKey(typ, uint64(i)), logKey(uint64(i)))
		got = append(got, encodeState(&a, &state{Creator: typ, Regs: []reg{{Name: "name", Value: value}}}))
		want = append(want, encodeState(nil, &state{Creator: typ, Regs: []reg{{Name: "name", Value: value}}}))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("slice %d from the arena is %x, want %x", i, got[i], want[i])
		}
	}
}
