package resolution

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// Readers see only decisions whose write is synced (the held map): nothing
// that a crash could take back is ever sent to a peer or settles a conflict.

// Tickets returns, per origin, the highest Seq held. Decisions 1..Seq of
// each origin are all here.
func (db *DB) Tickets() (map[uuid.UUID]uint64, error) {
	if err := db.live(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	return maps.Clone(db.held), nil
}

// Lookup returns the winning decision for f, how many decisions back its
// outcome (votes) and how many are recorded for f (total); ok is false when
// none is. The winning outcome is the Final recorded most often; a tie goes
// to the outcome whose newest decision is the greatest by (Stamp, Origin,
// Seq). The decision returned is that newest one.
func (db *DB) Lookup(f Fingerprint) (winner Decision, votes, total int, ok bool, err error) {
	held, err := db.Tickets()
	if err != nil {
		return Decision{}, 0, 0, false, err
	}
	p := append([]byte{prefixFingerprint}, f[:]...)
	it, err := db.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return Decision{}, 0, 0, false, err
	}
	defer it.Close()
	type tally struct {
		votes  int
		newest Decision
	}
	tallies := map[string]*tally{} // by encoded Final outcome
	for it.First(); it.Valid(); it.Next() {
		origin, seq, err := parseID(it.Key(), fKeyLen)
		if err != nil {
			return Decision{}, 0, 0, false, err
		}
		if seq > held[origin] {
			continue
		}
		d, err := db.read(origin, seq)
		if err != nil {
			return Decision{}, 0, 0, false, err
		}
		if d.Fingerprint != f {
			return Decision{}, 0, 0, false, fmt.Errorf("%w: %s: decision %s@%d is indexed under fingerprint %s but has %s", ErrCorrupt, db.dir, origin, seq, f.Short(), d.Fingerprint.Short())
		}
		k := string(appendOutcome(nil, d.Final))
		t := tallies[k]
		if t == nil {
			t = &tally{}
			tallies[k] = t
		}
		t.votes++
		if newer(d, &t.newest) {
			t.newest = *d
		}
		total++
	}
	if err := it.Error(); err != nil {
		return Decision{}, 0, 0, false, err
	}
	var best *tally
	for _, t := range tallies {
		if best == nil || t.votes > best.votes || t.votes == best.votes && newer(&t.newest, &best.newest) {
			best = t
		}
	}
	if best == nil {
		return Decision{}, 0, 0, false, nil
	}
	return best.newest, best.votes, total, true, nil
}

// newer reports whether a is greater than b by (Stamp, Origin, Seq).
func newer(a, b *Decision) bool {
	if a.Stamp != b.Stamp {
		return a.Stamp > b.Stamp
	}
	if c := bytes.Compare(a.Origin[:], b.Origin[:]); c != 0 {
		return c > 0
	}
	return a.Seq > b.Seq
}

// Since calls fn for every decision that the holder of have (per origin, the
// highest Seq it holds, as from Tickets) lacks, in (Origin, Seq) order,
// streaming. fn returning an error stops Since, which returns it. fn may read
// the DB but must not Close it.
func (db *DB) Since(have map[uuid.UUID]uint64, fn func(Decision) error) error {
	held, err := db.Tickets()
	if err != nil {
		return err
	}
	it, err := db.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixDecision}, UpperBound: []byte{prefixDecision + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; {
		origin, seq, err := parseID(it.Key(), dKeyLen)
		if err != nil {
			return err
		}
		switch h := have[origin]; {
		case h >= held[origin] || seq > held[origin]:
			ok = it.SeekGE(originEnd(it.Key())) // nothing (more) to send from origin
			continue
		case seq <= h:
			ok = it.SeekGE(dKey(origin, h+1))
			continue
		}
		d, err := db.decodeAt(origin, seq, it.Value())
		if err != nil {
			return err
		}
		if err := fn(*d); err != nil {
			return err
		}
		ok = it.Next()
	}
	return it.Error()
}

// All calls fn for every decision, in (Origin, Seq) order (key order; sort
// by Stamp for display), streaming. It is Since with nothing held.
func (db *DB) All(fn func(Decision) error) error { return db.Since(nil, fn) }

// read reads and decodes the decision (origin, seq), which an index names.
func (db *DB) read(origin uuid.UUID, seq uint64) (*Decision, error) {
	v, ok, err := db.get(dKey(origin, seq))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s: an index names decision %s@%d, which is missing", ErrCorrupt, db.dir, origin, seq)
	}
	return db.decodeAt(origin, seq, v)
}

// decodeAt decodes the value of D key (origin, seq) and checks that it is
// that decision.
func (db *DB) decodeAt(origin uuid.UUID, seq uint64, v []byte) (*Decision, error) {
	d, err := Decode(v)
	if err == nil && (d.Origin != origin || d.Seq != seq) {
		err = fmt.Errorf("%w: it is %s@%d", ErrCorrupt, d.Origin, d.Seq)
	}
	if err != nil {
		return nil, fmt.Errorf("resolution: %s: decision %s@%d: %w", db.dir, origin, seq, err)
	}
	return d, nil
}
