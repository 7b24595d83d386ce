package replica

import (
	"errors"
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

// Peer positions: for each peer this replica pulled from, how far it has
// read the peer's log. A pull resumes after it, and the merge tickets skip
// whatever it meets there that is already here, so a position is an
// optimization that is never wrong to leave behind. Local, never
// replicated.

// PeerPosition returns the sequence number reached in peer's log (0: never
// pulled from it).
func (r *Replica) PeerPosition(peer uuid.UUID) (uint64, error) {
	if err := r.live(); err != nil {
		return 0, err
	}
	v, ok, err := r.get(peerKey(peer))
	if err != nil || !ok {
		return 0, err
	}
	return u64(v)
}

// SetPeerPosition durably records that peer's log was read up to seq.
func (r *Replica) SetPeerPosition(peer uuid.UUID, seq uint64) error {
	if err := r.live(); err != nil {
		return err
	}
	if r.c == nil {
		return errors.New("replica: opened read-only; reopen it without ReadOnly to write")
	}
	return r.db.Set(peerKey(peer), appendU64(nil, seq), pebble.Sync)
}
