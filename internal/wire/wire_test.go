package wire_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/internal/wire"
)

// TestRoundTrip writes one of each element and reads it back.
func TestRoundTrip(t *testing.T) {
	id := uuid.MustParse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	w.ArrayLen(6)
	w.Uint(7)
	w.Int(-3)
	w.Bool(true)
	w.Str("héllo")
	w.Bytes(id[:])
	w.Bytes([]byte{0xff})
	if w.Err() != nil {
		t.Fatal(w.Err())
	}
	// Compact integers: 7 and -3 are one byte each.
	if want := 1 + 1 + 1 + 1 + (1 + 6) + (2 + 16) + (2 + 1); buf.Len() != want {
		t.Fatalf("wrote %d bytes, want %d: %x", buf.Len(), want, buf.Bytes())
	}
	r := wire.NewReader(buf.Bytes())
	r.Array(6, "test")
	if u, i, ok, s, got, raw := r.Uint(), r.Int(), r.Bool(), r.UTF8(), r.UUID(), r.Str(); u != 7 || i != -3 || !ok || s != "héllo" || got != id || raw != "\xff" {
		t.Fatalf("read %v %v %v %q %v %q", u, i, ok, s, got, raw)
	}
	if r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("err %v, %d bytes left", r.Err(), r.Remaining())
	}
}

func TestReaderRefuses(t *testing.T) {
	for name, tc := range map[string]struct {
		in   []byte
		read func(r *wire.Reader)
		want string
	}{
		"empty":       {nil, func(r *wire.Reader) { r.Uint() }, "truncated"},
		"short":       {[]byte{0xa3, 'a'}, func(r *wire.Reader) { r.Str() }, "truncated: string of 3 bytes does not fit in the 1 bytes left"},
		"huge string": {[]byte{0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'}, func(r *wire.Reader) { r.Raw() }, "string of 2147483647 bytes does not fit"},
		"huge array":  {[]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 1}, func(r *wire.Reader) { r.ArrayLen() }, "array of 4294967295 elements does not fit"},
		"min size":    {[]byte{0x93, 1, 2, 3, 4, 5}, func(r *wire.Reader) { r.ArrayLenMin(2) }, "array of 3 elements does not fit in the 5 bytes left"},
		"nil array":   {[]byte{0xc0}, func(r *wire.Reader) { r.ArrayLen() }, "nil where an array belongs"},
		"nil string":  {[]byte{0xc0}, func(r *wire.Reader) { r.Str() }, "nil where a string belongs"},
		"count":       {[]byte{0x92, 1, 2}, func(r *wire.Reader) { r.Array(3, "thing") }, "thing array has 2 elements, want 3"},
		"not utf8":    {[]byte{0xa1, 0xff}, func(r *wire.Reader) { r.UTF8() }, "string is not UTF-8"},
		"short uuid":  {[]byte{0xc4, 1, 0}, func(r *wire.Reader) { r.UUID() }, "invalid UUID: 1 bytes, want 16"},
		"sticky": {[]byte{0xc0, 0x01}, func(r *wire.Reader) {
			r.ArrayLen()
			if v := r.Uint(); v != 0 {
				panic("read after an error")
			}
		}, "nil where an array belongs"},
	} {
		r := wire.NewReader(tc.in)
		tc.read(r)
		if err := r.Err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", name, err, tc.want)
		}
	}
}

func TestValidName(t *testing.T) {
	for s, want := range map[string]string{
		"ok":                   "",
		"":                     "empty name",
		strings.Repeat("x", 5): "name longer than 4 bytes",
		"\xff":                 "name is not UTF-8",
	} {
		got := ""
		if err := wire.ValidName("name", s, 4); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("%q: got %q, want %q", s, got, want)
		}
	}
}
