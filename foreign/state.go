package foreign

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/prophet-sync/prophet/replica"
)

// Ref names a record of the gateway replica: its type and UUID.
type Ref struct {
	Type   string
	Record uuid.UUID
}

func (r Ref) String() string { return r.Type + " " + r.Record.String() }

// State is one foreign replica's state handle: its own Pebble DB at
// GATEWAY/foreign/UUID, never propagated and never shared with the gateway
// replica's merge tickets (DESIGN.md, "Foreign replicas"). It holds the push
// position, the pull cursors, remote ID <-> record maps, the remote
// changes our own pushes made, the gateway's per-object snapshots, and the
// sync operations.
//
// Every write is one synced Pebble batch.
type State struct {
	db     *pebble.DB
	dir    string
	mu     sync.Mutex // orders op transitions (ops.go)
	op     uint64     // last op ID given
	closed bool
	// feed serializes what numbers the foreign replica's changesets: a
	// pull, and an event's integration.
	feed sync.Mutex
	refs int                  // opens in this process (registry)
	key  string               // in the registry, when shared
	view atomic.Pointer[View] // set by the first Open
}

// View is what a gateway may read of its gateway replica while it
// translates remote changes (Foreign.Open gives the state handle one).
type View interface {
	// Record is a live record (nil: none).
	Record(ref Ref) (*replica.Record, error)
	// Pending lists the record's properties with a local edit still to
	// push (changed after the push position, not by the remote).
	Pending(ref Ref) (map[string]bool, error)
	// Ticket is the highest sequence number of origin integrated (0:
	// none): a gateway that numbers its own changesets goes on after it,
	// even when a crash kept its feed cursor behind.
	Ticket(origin uuid.UUID) uint64
}

// View is the gateway replica as the gateway may read it (nil before
// Foreign.Open).
func (s *State) View() View {
	if v := s.view.Load(); v != nil {
		return *v
	}
	return nil
}

// Key prefixes of the state DB (one byte each; DESIGN.md lists them).
const (
	kMeta     = 'm' // name -> bytes
	kCursor   = 'c' // name -> bytes (pull cursors)
	kPush     = 'p' // -> seq8: the last local changeset handed to this foreign replica
	kRemote   = 'r' // remote key -> ref
	kRecord   = 'u' // ref -> remote key
	kEcho     = 'x' // remote change key -> op8: made by our push
	kOwns     = 'o' // origin16 -> 0|1: does the origin belong to this remote?
	kSnapshot = 's' // remote key -> msgpack map: the remote object as last seen
	kOp       = 'q' // op8 -> msgpack Op
	kOpRecord = 'k' // ref op8 -> empty: ops per record
	kOpActive = 'a' // op8 -> empty: queued and processing ops
	kDelivery = 'd' // delivery ID -> op8: events delivered (webhooks)
)

// ErrStateLocked is returned when another process holds the state handle.
var ErrStateLocked = errors.New("foreign: the state handle is in use by another process")

// registry shares a state handle among its opens in one process (prophet
// serve's webhooks and the commands it runs for others use the same one):
// Pebble's lock would refuse a second open.
var registry = struct {
	sync.Mutex
	open map[string]*State
}{open: map[string]*State{}}

// OpenState opens (creating) the state handle in dir; an open in this
// process already is shared, and closed by the last Close.
func OpenState(dir string) (*State, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	registry.Lock()
	defer registry.Unlock()
	if s, ok := registry.open[abs]; ok {
		s.refs++
		return s, nil
	}
	s, err := openState(dir, false)
	if err != nil {
		return nil, err
	}
	s.refs, s.key = 1, abs
	registry.open[abs] = s
	return s, nil
}

// OpenStateReadOnly opens an existing state handle to read it (prophet
// foreign list and ops): it writes nothing, not even the recovery of
// processing ops. Pebble locks it all the same: while another process
// holds it, opening fails with ErrStateLocked (in this process, the open
// handle is shared).
func OpenStateReadOnly(dir string) (*State, error) {
	if abs, err := filepath.Abs(dir); err == nil {
		registry.Lock()
		s, ok := registry.open[abs]
		if ok {
			s.refs++
		}
		registry.Unlock()
		if ok {
			return s, nil
		}
	}
	return openState(dir, true)
}

func openState(dir string, readOnly bool) (*State, error) {
	if !readOnly {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("foreign: state handle %s: %w", dir, err)
		}
	}
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: quietLogger{}, ReadOnly: readOnly})
	if err != nil {
		if isLockErr(err) {
			return nil, fmt.Errorf("%w: %s (stop the other prophet command on this replica, or run this one through its prophet serve)", ErrStateLocked, dir)
		}
		return nil, fmt.Errorf("foreign: opening state handle %s: %w", dir, err)
	}
	s := &State{db: db, dir: dir}
	if readOnly {
		return s, nil
	}
	if err := s.recover(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// isLockErr says whether Pebble refused dir because another process (or
// this one) holds its lock.
func isLockErr(err error) bool {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "resource temporarily unavailable") || strings.Contains(msg, "lock held")
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// Close closes the state handle (again: nothing); a shared one closes
// with its last Close.
func (s *State) Close() error {
	if s.key != "" {
		registry.Lock()
		if registry.open[s.key] != s { // closed already
			registry.Unlock()
			return nil
		}
		s.refs--
		last := s.refs <= 0
		if last {
			delete(registry.open, s.key)
		}
		registry.Unlock()
		if !last {
			return nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// Dir is where the state handle lives.
func (s *State) Dir() string { return s.dir }

// Writer stages writes to the state handle; Update commits them at once.
type Writer struct {
	b *pebble.Batch
	s *State
}

// Update runs fn and commits its writes in one synced batch; fn's error
// discards them.
func (s *State) Update(fn func(w *Writer) error) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := fn(&Writer{b: b, s: s}); err != nil {
		return err
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("foreign: writing state handle %s: %w", s.dir, err)
	}
	return nil
}

func key(prefix byte, parts ...[]byte) []byte {
	k := []byte{prefix}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

// lp is a length-prefixed string, so no string runs into the next field.
func lp(s string) []byte { return append(binary.AppendUvarint(nil, uint64(len(s))), s...) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func refKey(r Ref) []byte { return append(lp(r.Type), r.Record[:]...) }

func (s *State) get(k []byte) ([]byte, bool, error) {
	v, c, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("foreign: reading state handle %s: %w", s.dir, err)
	}
	out := bytes.Clone(v)
	c.Close()
	return out, true, nil
}

// Gateway is the UUID of the gateway replica the state handle belongs to.
func (s *State) Gateway() (uuid.UUID, error) {
	v, err := s.Meta("gateway")
	if err != nil {
		return uuid.Nil, err
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, fmt.Errorf("foreign: state handle %s names no gateway replica (%q)", s.dir, v)
	}
	return id, nil
}

// Meta reads a meta value ("" when unset).
func (s *State) Meta(name string) (string, error) {
	v, _, err := s.get(key(kMeta, []byte(name)))
	return string(v), err
}

// SetMeta stages a meta value.
func (w *Writer) SetMeta(name, value string) error {
	return w.b.Set(key(kMeta, []byte(name)), []byte(value), nil)
}

// Cursor reads a pull cursor ("" when the foreign replica was never pulled).
func (s *State) Cursor(name string) (string, error) {
	v, _, err := s.get(key(kCursor, []byte(name)))
	return string(v), err
}

// SetCursor stages a pull cursor.
func (w *Writer) SetCursor(name, value string) error {
	return w.b.Set(key(kCursor, []byte(name)), []byte(value), nil)
}

// PushPosition is the last local sequence number handed to this foreign
// replica's push (0: none).
func (s *State) PushPosition() (uint64, error) {
	v, ok, err := s.get([]byte{kPush})
	if err != nil || !ok {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("foreign: state handle %s: corrupt push position", s.dir)
	}
	return binary.BigEndian.Uint64(v), nil
}

// SetPushPosition stages the push position.
func (w *Writer) SetPushPosition(seq uint64) error { return w.b.Set([]byte{kPush}, u64(seq), nil) }

// Record returns the record a remote object maps to.
func (s *State) Record(remote string) (Ref, bool, error) {
	v, ok, err := s.get(key(kRemote, []byte(remote)))
	if err != nil || !ok {
		return Ref{}, false, err
	}
	n, k := binary.Uvarint(v)
	if k <= 0 || uint64(len(v)-k) != n+16 {
		return Ref{}, false, fmt.Errorf("foreign: state handle %s: corrupt map entry for %s", s.dir, remote)
	}
	r := Ref{Type: string(v[k : k+int(n)])}
	copy(r.Record[:], v[k+int(n):])
	return r, true, nil
}

// Remote returns the remote object a record maps to.
func (s *State) Remote(r Ref) (string, bool, error) {
	v, ok, err := s.get(key(kRecord, refKey(r)))
	return string(v), ok, err
}

// Map stages remote <-> r.
func (w *Writer) Map(remote string, r Ref) error {
	if err := w.b.Set(key(kRemote, []byte(remote)), refKey(r), nil); err != nil {
		return err
	}
	return w.b.Set(key(kRecord, refKey(r)), []byte(remote), nil)
}

// Echo says whether the remote change (a gateway-defined key, such as an
// RT transaction ID) was made by one of our pushes, and by which op.
func (s *State) Echo(change string) (op uint64, ok bool, err error) {
	v, ok, err := s.get(key(kEcho, []byte(change)))
	if err != nil || !ok {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("foreign: state handle %s: corrupt echo entry", s.dir)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// SetEcho stages that op's push made the remote change.
func (w *Writer) SetEcho(change string, op uint64) error {
	return w.b.Set(key(kEcho, []byte(change)), u64(op), nil)
}

// Owns reads the cached answer to "did changesets of this origin come from
// this remote?".
func (s *State) Owns(origin uuid.UUID) (owns, known bool, err error) {
	v, ok, err := s.get(key(kOwns, origin[:]))
	if err != nil || !ok {
		return false, false, err
	}
	return len(v) == 1 && v[0] == 1, true, nil
}

// SetOwns stages the answer for origin.
func (w *Writer) SetOwns(origin uuid.UUID, owns bool) error {
	v := []byte{0}
	if owns {
		v[0] = 1
	}
	return w.b.Set(key(kOwns, origin[:]), v, nil)
}

// Snapshot reads the remote object as the gateway last saw it (nil: never).
func (s *State) Snapshot(remote string) (map[string]string, error) {
	v, ok, err := s.get(key(kSnapshot, []byte(remote)))
	if err != nil || !ok {
		return nil, err
	}
	var m map[string]string
	if err := msgpack.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("foreign: state handle %s: corrupt snapshot of %s: %w", s.dir, remote, err)
	}
	return m, nil
}

// SetSnapshot stages the remote object's snapshot.
func (w *Writer) SetSnapshot(remote string, m map[string]string) error {
	v, err := msgpack.Marshal(m)
	if err != nil {
		return err
	}
	return w.b.Set(key(kSnapshot, []byte(remote)), v, nil)
}

// stateDir is where the state handle of foreign replica id lives under the
// gateway replica's directory.
func stateDir(replicaDir string, id uuid.UUID) string {
	return filepath.Join(replicaDir, "foreign", id.String())
}
