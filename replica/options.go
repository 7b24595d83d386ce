package replica

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// Options configure Open and Init. The zero value is usable; every field's
// comment gives its default. Open copies the Options, so the caller may reuse
// them.
type Options struct {
	// FS is the filesystem the replica lives on. Default: vfs.Default (the
	// OS). Tests pass vfs.NewCrashableMem().
	FS vfs.FS

	// Clock gives the creation time of local changesets. Default: time.Now.
	Clock func() time.Time

	// NewUUID makes replica, database and record UUIDs. Default: NewUUIDv7
	// (time-ordered, RFC 9562).
	NewUUID func() uuid.UUID

	// Logger receives the replica's own log lines (Pebble's are dropped
	// unless they are errors). Default: discards everything.
	Logger *slog.Logger

	// Creator is recorded on local changesets. Default: "".
	Creator string

	// MaxGroupChangesets caps how many changesets one group commit (one
	// Pebble batch, one fsync) holds. Default: 4096.
	MaxGroupChangesets int

	// MaxGroupBytes caps the encoded size of one group commit. Default: 8 MiB.
	MaxGroupBytes int

	// CacheSize is the memory Pebble may use for its block cache and
	// memtables together, in bytes: Pebble reserves the memtables (2 x 32
	// MiB at most) out of it, and what is left caches blocks. Memory is
	// taken as it is used, so a short CLI command pays nothing for a large
	// value. Default: 256 MiB.
	CacheSize int64

	// LockWait is how long Open and Init wait for another process to close
	// the replica before they fail with *InUseError. Default: 0, fail at
	// once.
	LockWait time.Duration

	// ReadOnly opens the replica without the right to commit.
	// Default: false.
	ReadOnly bool
}

// EnsureDefaults fills in every unset field.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.NewUUID == nil {
		o.NewUUID = NewUUIDv7
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.MaxGroupChangesets == 0 {
		o.MaxGroupChangesets = 4096
	}
	if o.MaxGroupBytes == 0 {
		o.MaxGroupBytes = 8 << 20
	}
	if o.CacheSize == 0 {
		o.CacheSize = 256 << 20
	}
}

// Validate reports an option that cannot work.
func (o *Options) Validate() error {
	if o.MaxGroupChangesets < 1 {
		return errors.New("replica: Options.MaxGroupChangesets must be at least 1")
	}
	if o.MaxGroupBytes < 1 {
		return errors.New("replica: Options.MaxGroupBytes must be at least 1")
	}
	if o.CacheSize < 2*memTableSize+(8<<20) {
		return fmt.Errorf("replica: Options.CacheSize must be at least %d MiB (two memtables and some cache)", (2*memTableSize+(8<<20))>>20)
	}
	if len(o.Creator) > 1024 {
		return errors.New("replica: Options.Creator is longer than 1024 bytes")
	}
	return nil
}

// resolve returns a copy of opts (nil: the zero Options) with defaults
// filled in, validated.
func (opts *Options) resolve() (Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.EnsureDefaults()
	return o, o.Validate()
}

// NewUUIDv7 is a time-ordered UUID (version 7: a millisecond timestamp,
// then random bits). The records a replica makes get increasing UUIDs, so
// their record, history, LUID and property-index keys land at the end of
// their ranges, where Pebble's memtable inserts and compactions are
// cheapest (DESIGN.md, "Record UUIDs").
func NewUUIDv7() uuid.UUID { return uuid.Must(uuid.NewV7()) }
