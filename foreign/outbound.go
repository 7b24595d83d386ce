package foreign

import (
	"fmt"
	"maps"
	"slices"

	"github.com/prophet-sync/prophet/changeset"
)

// Writable is a Gateway.Outbound for a record type whose properties
// writable the remote takes: those ch changes, and whether the change goes
// out at all (an add or a delete always does; an update only when it
// changes one of them).
func Writable(ch *changeset.Change, writable []string) ([]string, bool) {
	var props []string
	for _, p := range ch.Props {
		if slices.Contains(writable, p.Name) {
			props = append(props, p.Name)
		}
	}
	if len(props) == 0 && ch.Op == changeset.Update {
		return nil, false
	}
	return props, true
}

// Later is an outbound op's error err: as it is when the remote
// refused the write (refused: it surely made nothing), else wrapped in
// ErrLater (a lost answer, a server failing: the op stays queued, and its
// retry looks for what the try may have made).
func Later(err error, refused bool) error {
	if err == nil || refused {
		return err
	}
	return fmt.Errorf("%w: %v", ErrLater, err)
}

// Answered is the Applied of a write whose answer, props, is the remote
// object as it now is (a snapshot gateway's). The record takes from it all
// of it for a create, else what the op wrote and the properties named in
// assigned (derived ones, IDs). The snapshot is the one before (prev)
// with those values: what else the remote changed since the last pull is
// not in the record, so the next pull must still see it as a change.
func Answered(key string, props map[string]string, op *Op, assigned []string, prev map[string]string) Applied {
	a := Applied{Remote: key, Snapshot: maps.Clone(prev), Report: map[string]string{}}
	if a.Snapshot == nil {
		a.Snapshot = map[string]string{}
	}
	for k, v := range props {
		if op.Create || slices.Contains(op.Props, k) || slices.Contains(assigned, k) {
			a.Report[k] = v
			a.Snapshot[k] = v
		}
	}
	return a
}
