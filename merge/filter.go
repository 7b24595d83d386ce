package merge

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// Filter is FilteredSource.ChangesetsFor over any Source: it reads src's
// log after `after` and calls fn only for the entries the puller lacks
// (its origin is not self and its origin sequence is above tickets[origin],
// or its origin is self above selfLatest), reading only each entry's
// identity (changeset.PeekID). It returns the last sequence number read. A
// server uses it to send a puller only what it lacks. tickets is updated as
// entries are sent.
func Filter(ctx context.Context, src Source, after uint64, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64, fn func(seq uint64, raw []byte) error) (last uint64, err error) {
	last = after
	if tickets == nil {
		tickets = map[uuid.UUID]uint64{}
	}
	err = src.Changesets(ctx, after, func(seq uint64, raw []byte) error {
		id, err := changeset.PeekID(raw)
		if err != nil {
			return fmt.Errorf("%w at %d of its log: %w", ErrMalformed, seq, err)
		}
		if Lacks(id, tickets, self, selfLatest) {
			tickets[id.Origin] = max(tickets[id.Origin], id.Seq)
			if err := fn(seq, raw); err != nil {
				return err
			}
		}
		last = seq
		return nil
	})
	return last, err
}

// Lacks reports whether the holder of tickets, replica self with selfLatest
// changesets of its own, lacks changeset id: the rule by which a pull skips
// what is already here.
func Lacks(id changeset.ID, tickets map[uuid.UUID]uint64, self uuid.UUID, selfLatest uint64) bool {
	if id.Origin == self {
		return id.Seq > selfLatest
	}
	return id.Seq > tickets[id.Origin]
}
