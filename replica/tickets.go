package replica

import (
	"maps"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// Merge tickets: for each origin replica, the highest origin sequence number
// integrated from it. They are local metadata, never replicated. A commit
// raises the ticket of every changeset's origin in the same batch (I3), and
// no ticket is ever ahead of the log (I4).

// Ticket returns the merge ticket of origin (0: nothing from it).
func (r *Replica) Ticket(origin uuid.UUID) uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.tickets[origin]
}

// Tickets returns a copy of every merge ticket.
func (r *Replica) Tickets() map[uuid.UUID]uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maps.Clone(r.tickets)
}

func (r *Replica) loadTickets() (map[uuid.UUID]uint64, error) {
	out := map[uuid.UUID]uint64{}
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTicket}, UpperBound: []byte{prefixTicket + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 17 {
			return nil, errCorruptKey(k)
		}
		v, err := u64(it.Value())
		if err != nil {
			return nil, err
		}
		out[uuid.UUID(k[1:17])] = v
	}
	return out, it.Error()
}

func (r *Replica) loadTypes() (map[string]typeStats, error) {
	out := map[string]typeStats{}
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixType}, UpperBound: []byte{prefixType + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		typ, rest, err := readLP(it.Key()[1:])
		if err != nil || len(rest) != 0 || len(it.Value()) != 16 {
			return nil, errCorruptKey(it.Key())
		}
		next, _ := u64(it.Value()[:8])
		live, _ := u64(it.Value()[8:])
		out[typ] = typeStats{NextLUID: next, Live: live}
	}
	return out, it.Error()
}
