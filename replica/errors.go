package replica

import (
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

var (
	// ErrCorrupt marks damage found in the replica's own database. It is the
	// same marker as changeset.ErrCorrupt, so one errors.Is test covers a bad
	// changeset from disk or from a peer.
	ErrCorrupt = changeset.ErrCorrupt

	// ErrNoReplica: there is no replica at the directory.
	ErrNoReplica = errors.New("replica: no replica here")
	// ErrExists: Init found a replica already there.
	ErrExists = errors.New("replica: a replica already exists here")
	// ErrInUse: another process has the replica open.
	ErrInUse = errors.New("replica: in use by another process")
	// ErrNotFound: no live record with that type and ID, or no changeset
	// with that sequence number.
	ErrNotFound = errors.New("replica: not found")
	// ErrClosed: the replica was closed.
	ErrClosed = errors.New("replica: closed")
	// ErrConflict: a changeset does not apply to the current state (an update
	// of a missing record, an add of an existing one, or an old value that is
	// not the current value). The merge package settles conflicts before it
	// commits; the replica only refuses them.
	ErrConflict = errors.New("replica: changeset conflicts with current state")
)

// InUseError is returned by Open and Init when another process (or another
// Open in this one) has the replica. It wraps ErrInUse.
type InUseError struct {
	Dir         string
	PID         int  // the holder's pid, 0 if unknown
	SameProcess bool // this process already has the replica open
}

func (e *InUseError) Error() string {
	if e.SameProcess {
		return fmt.Sprintf("replica: %s is already open in this process; share that *Replica", e.Dir)
	}
	holder := "another process"
	if e.PID > 0 {
		holder = fmt.Sprintf("another process (pid %d)", e.PID)
	}
	return fmt.Sprintf("replica: %s is in use by %s; wait for it to finish, or stop it", e.Dir, holder)
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// UnitError is returned by Bulk when a unit fails: everything before unit
// number Unit (counting from 1) is committed and durable, nothing of it is.
type UnitError struct {
	Unit int
	Err  error
}

func (e *UnitError) Error() string {
	return fmt.Sprintf("unit %d: %v (the units before it are committed)", e.Unit, e.Err)
}
func (e *UnitError) Unwrap() error { return e.Err }

// AmbiguousIDError is returned when a UUID prefix matches several records.
type AmbiguousIDError struct {
	Type       string
	Prefix     string
	Candidates []Candidate
	More       bool // there are more candidates than listed
}

// Candidate is one record an ambiguous ID could mean.
type Candidate struct {
	UUID uuid.UUID
	LUID uint64 // 0: the record is deleted
}

func (e *AmbiguousIDError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "replica: %s ID %q is ambiguous: it matches", e.Type, e.Prefix)
	for i, c := range e.Candidates {
		if i > 0 {
			b.WriteString(",")
		}
		if c.LUID == 0 {
			fmt.Fprintf(&b, " %s (deleted)", c.UUID)
		} else {
			fmt.Fprintf(&b, " %s (LUID %d)", c.UUID, c.LUID)
		}
	}
	if e.More {
		b.WriteString(" and more")
	}
	b.WriteString("; give more of the UUID, or the LUID")
	return b.String()
}
