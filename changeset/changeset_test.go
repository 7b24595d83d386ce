package changeset_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/prophet-sync/prophet/changeset"
)

var (
	origin = uuid.MustParse("0190c0de-0000-7000-8000-000000000001")
	recA   = uuid.MustParse("0190c0de-0000-7000-8000-0000000000aa")
	recB   = uuid.MustParse("0190c0de-0000-7000-8000-0000000000bb")
)

func sample() *changeset.Changeset {
	return &changeset.Changeset{
		Origin:    origin,
		OriginSeq: 42,
		Creator:   "alice@example.com",
		Created:   time.Date(2026, 11, 22, 12, 0, 0, 123456789, time.UTC),
		Changes: []changeset.Change{
			{RecordType: "ticket", Record: recB, Op: changeset.Update, Props: []changeset.PropChange{
				{Name: "status", Old: "new", New: "open"},
				{Name: "owner", Old: "", New: "bob"},
			}},
			{RecordType: "ticket", Record: recA, Op: changeset.Add, Props: []changeset.PropChange{
				{Name: "summary", New: "printer on fire"},
			}},
		},
	}
}

func mustEncode(t testing.TB, cs *changeset.Changeset) []byte {
	t.Helper()
	b, err := changeset.Encode(nil, cs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	cs := sample()
	cs.Normalize()
	b := mustEncode(t, cs)
	got, err := changeset.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Changes[0].Record != recA || got.Changes[1].Props[0].Name != "owner" {
		t.Fatalf("not in canonical order after Normalize: %+v", got.Changes)
	}
	if !got.Created.Equal(cs.Created) || got.Created.Location() != time.UTC {
		t.Fatalf("created = %v, want %v in UTC", got.Created, cs.Created)
	}
	if b2 := mustEncode(t, got); !bytes.Equal(b, b2) {
		t.Fatalf("re-encode differs:\n%x\n%x", b, b2)
	}
}

// The hash ignores where a copy was read from.
func TestHashIgnoresSeqAndSource(t *testing.T) {
	a := sample()
	a.Normalize()
	b := sample()
	b.Normalize()
	b.Seq, b.Source = 7, uuid.New()
	ha, _ := a.Hash()
	hb, _ := b.Hash()
	if ha != hb {
		t.Fatalf("hash depends on Seq/Source: %s vs %s", ha, hb)
	}
	b.Creator = "mallory"
	if hc, _ := b.Hash(); hc == ha {
		t.Fatal("hash ignores the creator")
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	for name, mut := range map[string]func(*changeset.Changeset){
		"unsorted":        func(cs *changeset.Changeset) {},
		"nil origin":      func(cs *changeset.Changeset) { cs.Normalize(); cs.Origin = uuid.Nil },
		"seq 0":           func(cs *changeset.Changeset) { cs.Normalize(); cs.OriginSeq = 0 },
		"empty type":      func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].RecordType = "" },
		"zero time":       func(cs *changeset.Changeset) { cs.Normalize(); cs.Created = time.Time{} },
		"add with old":    func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].Props[0].Old = "x" },
		"no-op update":    func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[1].Props[0].New = "" },
		"same record":     func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[1].Record = recA },
		"no changes":      func(cs *changeset.Changeset) { cs.Changes = nil },
		"bad op":          func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].Op = 9 },
		"invalid utf8":    func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].Props[0].New = "\xff" },
		"duplicate prop":  func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[1].Props[1].Name = "owner" },
		"delete with new": func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].Op = changeset.Delete },
		"add without new": func(cs *changeset.Changeset) { cs.Normalize(); cs.Changes[0].Props[0].New = "" },
		"delete without old": func(cs *changeset.Changeset) {
			cs.Normalize()
			cs.Changes[0].Op = changeset.Delete
			cs.Changes[0].Props[0] = changeset.PropChange{Name: "phantom"}
		},
	} {
		cs := sample()
		mut(cs)
		if _, err := changeset.Encode(nil, cs); !errors.Is(err, changeset.ErrInvalid) {
			t.Errorf("%s: Encode error = %v, want ErrInvalid", name, err)
		}
	}
}

// raw builds a msgpack changeset by hand, so tests can write what Encode
// never would.
func raw(t *testing.T, vals ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	if err := e.Encode(vals); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeRejects(t *testing.T) {
	good := mustEncode(t, func() *changeset.Changeset { cs := sample(); cs.Normalize(); return cs }())
	ns := int64(1)
	change := func(typ string, rec []byte, op uint, props ...[]string) []any {
		ps := []any{}
		for _, p := range props {
			ps = append(ps, p)
		}
		return []any{typ, rec, op, ps}
	}
	ok := change("ticket", recA[:], 1, []string{"a", "", "1"})
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"empty":         {nil, "truncated"},
		"truncated":     {good[:len(good)-3], "truncated"},
		"trailing":      {append(append([]byte{}, good...), 0xc0), "trailing"},
		"huge array":    {[]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, "array of 4294967295 elements does not fit"},
		"huge string":   {append(append([]byte{0x97, 0x01, 0xc4, 0x10}, origin[:]...), 0x01, 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'), "string of 2147483647 bytes does not fit"},
		"short uuid":    {raw(t, 1, origin[:15], 1, "c", ns, 0, []any{ok}), "invalid UUID"},
		"string uuid":   {raw(t, 1, origin.String(), 1, "c", ns, 0, []any{ok}), "invalid UUID"},
		"empty type":    {raw(t, 1, origin[:], 1, "c", ns, 0, []any{change("", recA[:], 1, []string{"a", "", "1"})}), "empty record type"},
		"same record":   {raw(t, 1, origin[:], 1, "c", ns, 0, []any{ok, ok}), "same record"},
		"unsorted":      {raw(t, 1, origin[:], 1, "c", ns, 0, []any{change("z", recA[:], 1), change("a", recA[:], 1)}), "canonical order"},
		"version 2":     {raw(t, 2, origin[:], 1, "c", ns, 0, []any{ok}), "unknown format version 2"},
		"unknown flags": {raw(t, 1, origin[:], 1, "c", ns, 4, []any{ok}), "unknown flags"},
		"seq 0":         {raw(t, 1, origin[:], 0, "c", ns, 0, []any{ok}), "sequence number is 0"},
		"bad op":        {raw(t, 1, origin[:], 1, "c", ns, 0, []any{change("t", recA[:], 7)}), "unknown change type 7"},
		"nil for array": {[]byte{0xc0}, "nil where an array belongs"},
		"six elements":  {raw(t, 1, origin[:], 1, "c", ns, 0), "want 7"},
		"not utf8":      {raw(t, 1, origin[:], 1, "c\xff", ns, 0, []any{ok}), "not UTF-8"},
		"noncanonical int": {func() []byte {
			// 0xcf = uint64: the same value 1, in nine bytes instead of one.
			b := raw(t, 1, origin[:], 1, "c", ns, 0, []any{ok})
			i := bytes.Index(b, origin[:]) + 16
			return append(append(append([]byte{}, b[:i]...), 0xcf, 0, 0, 0, 0, 0, 0, 0, 1), b[i+1:]...)
		}(), "canonical encoding"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cs, err := changeset.Decode(tc.in)
			if !errors.Is(err, changeset.ErrCorrupt) {
				t.Fatalf("Decode = %+v, %v; want ErrCorrupt", cs, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// A hostile length must not make the decoder allocate what it claims.
func TestDecodeHostileLengthAllocatesLittle(t *testing.T) {
	in := []byte{0x97, 0x01, 0xc6, 0x7f, 0xff, 0xff, 0xff, 0x00}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := changeset.Decode(in); err == nil {
			t.Fatal("decoded")
		}
	})
	var before, after runtimeMem
	before.read()
	for range 100 {
		changeset.Decode(in)
	}
	after.read()
	if per := (after.total - before.total) / 100; per > 64<<10 {
		t.Fatalf("decoding a 2 GiB length claim allocated %d bytes per call (%v allocs)", per, allocs)
	}
}

// A count the input cannot back costs nothing: slices grow only as elements
// decode.
func TestDecodeHostileCountAllocatesLittle(t *testing.T) {
	head := raw(t, 1, origin[:], 1, "c", int64(1), 0)
	head[0] = 0x97 // the same six elements, announced as seven
	body := make([]byte, 1<<20)
	in := append(append(head, 0xdd, 0, 0, 0, 0), body...)
	n := uint32(len(body) / 21)
	in[len(head)+1], in[len(head)+2], in[len(head)+3], in[len(head)+4] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	var before, after runtimeMem
	before.read()
	for range 10 {
		if _, err := changeset.Decode(in); !errors.Is(err, changeset.ErrCorrupt) {
			t.Fatalf("decoded: %v", err)
		}
	}
	after.read()
	if per := (after.total - before.total) / 10; per > uint64(len(in)) {
		t.Fatalf("a %d-byte input claiming %d changes allocated %d bytes per decode", len(in), n, per)
	}
}
