package changeset_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/prophet-sync/prophet/changeset"
)

// FuzzDecode feeds arbitrary bytes to Decode. Whatever it accepts must
// re-encode to exactly the same bytes (one changeset, one encoding); whatever
// it refuses must be refused with ErrCorrupt, never a panic.
//
//	go test ./changeset -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.msgpack"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		cs, err := changeset.Decode(in)
		if err != nil {
			if !errors.Is(err, changeset.ErrCorrupt) {
				t.Fatalf("error not marked corrupt: %v", err)
			}
			return
		}
		out, err := changeset.Encode(nil, cs)
		if err != nil {
			t.Fatalf("decoded changeset does not re-encode: %v", err)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("round trip changed the bytes:\n in %x\nout %x", in, out)
		}
	})
}
