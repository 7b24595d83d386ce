package resolution_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/prophet-sync/prophet/resolution"
)

var (
	recA    = uuid.MustParse("0e6c3c4e-3c1a-4b8e-9a55-6b0c3c1f2a01")
	recB    = uuid.MustParse("0e6c3c4e-3c1a-4b8e-9a55-6b0c3c1f2a02")
	originA = uuid.MustParse("a0000000-0000-4000-8000-000000000001")
	originB = uuid.MustParse("b0000000-0000-4000-8000-000000000002")
	originC = uuid.MustParse("c0000000-0000-4000-8000-000000000003")
)

func props(kv ...string) []resolution.Prop {
	var ps []resolution.Prop
	for i := 0; i < len(kv); i += 2 {
		ps = append(ps, resolution.Prop{Name: kv[i], Value: kv[i+1]})
	}
	return ps
}

// conflict is an update/update conflict on recA: both sides changed owner
// and status differently.
func conflict() resolution.Conflict {
	return resolution.Conflict{
		Type:   "ticket",
		Record: recA,
		Base:   props("owner", "alice", "status", "open"),
		Source: resolution.Outcome{Live: true, Props: props("owner", "bob", "status", "open")},
		Target: resolution.Outcome{Live: true, Props: props("owner", "carol", "status", "stalled")},
	}
}

func decision(c resolution.Conflict, final resolution.Outcome, how string, stamp int64) resolution.Decision {
	return resolution.Decision{Stamp: stamp, Fingerprint: c.Fingerprint(), Conflict: c, Final: final, How: how}
}

// from sets a decision's identity, as if it had been recorded there.
func from(origin uuid.UUID, seq uint64, d resolution.Decision) resolution.Decision {
	d.Origin, d.Seq = origin, seq
	return d
}

func mustEncode(t testing.TB, d *resolution.Decision) []byte {
	t.Helper()
	b, err := resolution.Encode(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFingerprintSymmetric(t *testing.T) {
	c := conflict()
	s := c
	s.Source, s.Target = c.Target, c.Source
	if c.Fingerprint() != s.Fingerprint() {
		t.Fatal("swapping Source and Target changed the fingerprint")
	}
	if f := c.Fingerprint(); f.String() != hex.EncodeToString(f[:]) || len(c.Fingerprint().Short()) != 12 {
		t.Fatalf("String %s, Short %s", c.Fingerprint(), c.Fingerprint().Short())
	}
}

func TestFingerprintSensitive(t *testing.T) {
	mutations := map[string]func(c *resolution.Conflict){
		"unchanged":           func(c *resolution.Conflict) {},
		"type":                func(c *resolution.Conflict) { c.Type = "bug" },
		"record":              func(c *resolution.Conflict) { c.Record = recB },
		"base name":           func(c *resolution.Conflict) { c.Base[0].Name = "owner2" },
		"base value":          func(c *resolution.Conflict) { c.Base[1].Value = "new" },
		"base value absent":   func(c *resolution.Conflict) { c.Base[1].Value = "" },
		"source live":         func(c *resolution.Conflict) { c.Source.Live = false },
		"source value":        func(c *resolution.Conflict) { c.Source.Props[0].Value = "dave" },
		"source name":         func(c *resolution.Conflict) { c.Source.Props[0].Name = "owners" },
		"target live":         func(c *resolution.Conflict) { c.Target.Live = false },
		"target value":        func(c *resolution.Conflict) { c.Target.Props[1].Value = "closed" },
		"one more property":   func(c *resolution.Conflict) { c.Base = append(c.Base, resolution.Prop{Name: "z"}) },
		"one less property":   func(c *resolution.Conflict) { c.Base = c.Base[:1] },
		"name-value boundary": func(c *resolution.Conflict) { c.Base[0] = resolution.Prop{Name: "ownera", Value: "lice"} },
		"value moved": func(c *resolution.Conflict) {
			c.Base[0].Value, c.Base[1].Value = c.Base[1].Value, c.Base[0].Value
		},
		"both sides equal": func(c *resolution.Conflict) { c.Target = c.Source },
	}
	seen := map[resolution.Fingerprint]string{}
	for name, mutate := range mutations {
		c := conflict()
		mutate(&c)
		f := c.Fingerprint()
		if other, dup := seen[f]; dup {
			t.Errorf("%q and %q have the same fingerprint %s", name, other, f.Short())
		}
		seen[f] = name
	}
}

func TestRoundTrip(t *testing.T) {
	c := conflict()
	deleted := c
	deleted.Record = recB
	deleted.Target = resolution.Outcome{Live: false, Props: props("owner", "", "status", "")}
	empty := resolution.Conflict{Type: "ticket", Record: recA,
		Source: resolution.Outcome{Live: false}, Target: resolution.Outcome{Live: true}}
	for name, d := range map[string]resolution.Decision{
		"update/update": from(originA, 1, decision(c, c.Source, "theirs", 1)),
		"delete wins":   from(originB, 1<<40, decision(deleted, deleted.Target, "prompt", 1_800_000_000_000_000_000)),
		"no properties": from(originC, 7, decision(empty, empty.Target, "resolver:keep-alive", 5)),
		"unicode": from(originA, 2, decision(c,
			resolution.Outcome{Live: true, Props: props("owner", "ünïcödé ✓", "status", strings.Repeat("x", 70000))}, "mine", 3)),
	} {
		t.Run(name, func(t *testing.T) {
			b := mustEncode(t, &d)
			got, err := resolution.Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, d) {
				t.Fatalf("round trip changed the decision:\n got %+v\nwant %+v", *got, d)
			}
		})
	}
}

// -update-golden writes golden files that do not exist yet. It never rewrites
// one: a committed vector is a promise that those bytes decode forever.
var updateGolden = flag.Bool("update-golden", false, "write missing golden vectors in testdata/golden")

func goldenCases() map[string]resolution.Decision {
	c := conflict()
	return map[string]resolution.Decision{
		"v1-decision": from(originA, 3, decision(c,
			resolution.Outcome{Live: true, Props: props("owner", "bob", "status", "stalled")}, "prompt", 1_795_000_000_123_456_789)),
	}
}

// dump is a stable text form of a decoded decision, compared against the
// .txt beside each vector. It includes the fingerprint, which pins its
// encoding too.
func dump(d *resolution.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id %s@%d\nstamp %d\nhow %q\nfingerprint %s\n%s %s\n", d.Origin, d.Seq, d.Stamp, d.How, d.Fingerprint, d.Conflict.Type, d.Conflict.Record)
	fmt.Fprintf(&b, "base %q\nsource %v %q\ntarget %v %q\nfinal %v %q\n", d.Conflict.Base,
		d.Conflict.Source.Live, d.Conflict.Source.Props, d.Conflict.Target.Live, d.Conflict.Target.Props, d.Final.Live, d.Final.Props)
	return b.String()
}

func goldenFiles() []string {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.msgpack"))
	return files
}

func TestGolden(t *testing.T) {
	dir := filepath.Join("testdata", "golden")
	if *updateGolden {
		os.MkdirAll(dir, 0o755)
		for name, d := range goldenCases() {
			p := filepath.Join(dir, name+".msgpack")
			if _, err := os.Stat(p); err == nil {
				continue
			}
			os.WriteFile(p, mustEncode(t, &d), 0o644)
			os.WriteFile(filepath.Join(dir, name+".txt"), []byte(dump(&d)), 0o644)
		}
	}
	files := goldenFiles()
	if len(files) < len(goldenCases()) {
		t.Fatalf("found %d golden vectors in %s, want at least %d (run with -update-golden once)", len(files), dir, len(goldenCases()))
	}
	for _, p := range files {
		name := strings.TrimSuffix(filepath.Base(p), ".msgpack")
		t.Run(name, func(t *testing.T) {
			b, _ := os.ReadFile(p)
			want, err := os.ReadFile(strings.TrimSuffix(p, ".msgpack") + ".txt")
			if err != nil {
				t.Fatal(err)
			}
			d, err := resolution.Decode(b)
			if err != nil {
				t.Fatalf("a committed golden vector no longer decodes: %v", err)
			}
			if got := dump(d); got != string(want) {
				t.Fatalf("decoded differently:\n got: %s\nwant: %s", got, want)
			}
			if orig, ok := goldenCases()[name]; ok && !bytes.Equal(mustEncode(t, &orig), b) {
				t.Fatalf("Encode(%s) no longer yields the golden bytes", name)
			}
		})
	}
}

// rawDecision is the wire format without any of Encode's checks, to build
// bytes that Decode must refuse.
type rawDecision struct {
	version, seq        uint64
	origin, record      []byte
	stamp               int64
	how, typ            string
	base                []string
	live                [3]bool
	source, target, fin []string
}

func raw() rawDecision {
	return rawDecision{version: 1, seq: 1, origin: originA[:], record: recA[:], stamp: 5, how: "mine", typ: "ticket",
		base: []string{"owner", "alice"}, live: [3]bool{true, true, true},
		source: []string{"owner", "bob"}, target: []string{"owner", "carol"}, fin: []string{"owner", "bob"}}
}

func (r rawDecision) encode(t *testing.T) []byte {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	strs := func(ss []string) {
		e.EncodeArrayLen(len(ss))
		for _, s := range ss {
			e.EncodeString(s)
		}
	}
	e.EncodeArrayLen(7)
	e.EncodeUint(r.version)
	e.EncodeBytes(r.origin)
	e.EncodeUint(r.seq)
	e.EncodeInt(r.stamp)
	e.EncodeString(r.how)
	e.EncodeArrayLen(5)
	e.EncodeString(r.typ)
	e.EncodeBytes(r.record)
	strs(r.base)
	for i, ps := range [][]string{r.source, r.target, r.fin} {
		e.EncodeArrayLen(2)
		e.EncodeBool(r.live[i])
		strs(ps)
	}
	return buf.Bytes()
}

func TestDecodeRejects(t *testing.T) {
	if _, err := resolution.Decode(raw().encode(t)); err != nil {
		t.Fatalf("the unmodified raw decision must decode: %v", err)
	}
	cases := map[string]func(r *rawDecision){
		"unknown version":    func(r *rawDecision) { r.version = 2 },
		"short origin":       func(r *rawDecision) { r.origin = r.origin[:15] },
		"nil origin":         func(r *rawDecision) { r.origin = make([]byte, 16) },
		"seq 0":              func(r *rawDecision) { r.seq = 0 },
		"stamp 0":            func(r *rawDecision) { r.stamp = 0 },
		"empty how":          func(r *rawDecision) { r.how = "" },
		"long how":           func(r *rawDecision) { r.how = strings.Repeat("h", 65) },
		"how not UTF-8":      func(r *rawDecision) { r.how = "\xff" },
		"empty type":         func(r *rawDecision) { r.typ = "" },
		"nil record":         func(r *rawDecision) { r.record = make([]byte, 16) },
		"odd property array": func(r *rawDecision) { r.base = []string{"owner"} },
		"unsorted props": func(r *rawDecision) {
			r.base = []string{"z", "", "a", ""}
			r.source, r.target, r.fin = r.base, r.base, r.base
		},
		"duplicate props": func(r *rawDecision) {
			r.base = []string{"a", "", "a", ""}
			r.source, r.target, r.fin = r.base, r.base, r.base
		},
		"empty name": func(r *rawDecision) {
			r.base = []string{"", "x"}
			r.source, r.target, r.fin = r.base, r.base, r.base
		},
		"final names differ":     func(r *rawDecision) { r.fin = []string{"status", "open"} },
		"final has fewer":        func(r *rawDecision) { r.fin = nil },
		"source names differ":    func(r *rawDecision) { r.source = []string{"owners", "bob"} },
		"value of a dead record": func(r *rawDecision) { r.live[2] = false },
	}
	for name, mutate := range cases {
		r := raw()
		mutate(&r)
		if _, err := resolution.Decode(r.encode(t)); !errors.Is(err, resolution.ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}

	b := raw().encode(t)
	for n := range len(b) {
		if _, err := resolution.Decode(b[:n]); !errors.Is(err, resolution.ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: got %v, want ErrCorrupt", n, len(b), err)
		}
	}
	if _, err := resolution.Decode(append(bytes.Clone(b), 0)); !errors.Is(err, resolution.ErrCorrupt) || !strings.Contains(err.Error(), "trailing") {
		t.Fatalf("trailing byte: got %v", err)
	}
	// Seq 1 as a uint64 (0xcf + 8 bytes) instead of a fixint: same value,
	// not the canonical bytes.
	i := bytes.Index(b, append([]byte{0xc4, 16}, originA[:]...)) + 18
	long := append(append(append([]byte(nil), b[:i]...), 0xcf, 0, 0, 0, 0, 0, 0, 0, 1), b[i+1:]...)
	if _, err := resolution.Decode(long); !errors.Is(err, resolution.ErrCorrupt) || !strings.Contains(err.Error(), "canonical") {
		t.Fatalf("non-minimal integer: got %v", err)
	}
}

// TestDecodeHostileLengths: a length claim the input cannot back fails
// before anything of that size is allocated.
func TestDecodeHostileLengths(t *testing.T) {
	for name, b := range map[string][]byte{
		"2 GiB string": append(raw().encode(t)[:2], 0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'),
		"huge array":   {0xdd, 0xff, 0xff, 0xff, 0xff, 1},
		"huge props": func() []byte {
			r := raw()
			r.base = nil
			b := r.encode(t)
			i := bytes.Index(b, []byte("ticket")) + len("ticket") + 18
			return append(append(b[:i:i], 0xdd, 0x7f, 0xff, 0xff, 0xfe), b[i+1:]...)
		}(),
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := resolution.Decode(b)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, resolution.ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
			t.Errorf("%s: decoding %d bytes allocated %d bytes", name, len(b), n)
		}
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	c := conflict()
	ok := from(originA, 1, decision(c, c.Source, "theirs", 1))
	mustEncode(t, &ok)
	cases := map[string]func(d *resolution.Decision){
		"stale fingerprint": func(d *resolution.Decision) { d.Conflict.Type = "bug" },
		"no fingerprint":    func(d *resolution.Decision) { d.Fingerprint = resolution.Fingerprint{} },
		"unsorted": func(d *resolution.Decision) {
			d.Conflict.Base = props("status", "open", "owner", "alice")
			d.Fingerprint = d.Conflict.Fingerprint()
		},
		"final names":  func(d *resolution.Decision) { d.Final = resolution.Outcome{Live: true, Props: props("owner", "x")} },
		"no how":       func(d *resolution.Decision) { d.How = "" },
		"no origin":    func(d *resolution.Decision) { d.Origin = uuid.Nil },
		"dead, valued": func(d *resolution.Decision) { d.Final.Live = false },
	}
	for name, mutate := range cases {
		d := from(originA, 1, decision(conflict(), conflict().Source, "theirs", 1))
		mutate(&d)
		if _, err := resolution.Encode(nil, &d); !errors.Is(err, resolution.ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", name, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to Decode. Whatever it accepts must
// re-encode to exactly the same bytes; whatever it refuses must be refused
// with ErrCorrupt, never a panic.
//
//	go test ./resolution -run '^$' -fuzz FuzzDecode -fuzztime 60s
func FuzzDecode(f *testing.F) {
	for _, p := range goldenFiles() {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := resolution.Decode(in)
		if err != nil {
			if !errors.Is(err, resolution.ErrCorrupt) {
				t.Fatalf("error not marked corrupt: %v", err)
			}
			return
		}
		out, err := resolution.Encode(nil, d)
		if err != nil {
			t.Fatalf("decoded decision does not re-encode: %v", err)
		}
		if !bytes.Equal(in, out) {
			t.Fatalf("round trip changed the bytes:\n in %x\nout %x", in, out)
		}
	})
}
