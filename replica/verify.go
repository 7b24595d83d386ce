package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// VerifyReport is what Verify found. Problems is empty when every invariant
// of DESIGN.md holds.
type VerifyReport struct {
	Changesets uint64   // log entries read
	Records    uint64   // live records
	Problems   []string // one line each; capped at maxProblems
	Truncated  int      // problems found beyond the cap
}

// OK reports whether no problem was found.
func (v *VerifyReport) OK() bool { return len(v.Problems) == 0 }

const maxProblems = 50

func (v *VerifyReport) problem(format string, args ...any) {
	if len(v.Problems) >= maxProblems {
		v.Truncated++
		return
	}
	v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
}

// Verify replays the log and checks every invariant (DESIGN.md I1–I8)
// against one consistent snapshot of the replica:
//
//   - the log runs 1..LatestSeq with no gap, and every entry decodes;
//   - every changeset is in the identity index, and the index holds nothing
//     else; a local changeset's OriginSeq is its Seq;
//   - every changeset applies cleanly to the state before it;
//   - the records, history, property index, LUIDs and type stats equal a
//     replay of the log, key for key and byte for byte;
//   - the stored digest equals the digest of the replayed records;
//   - no merge ticket is ahead of the log.
//
// The replay is written to a scratch Pebble DB in the replica directory
// (removed afterwards), so memory does not grow with the replica. Verify
// returns an error only when it cannot read or write; what it finds wrong
// is in the report.
func (r *Replica) Verify(ctx context.Context) (*VerifyReport, error) {
	if err := r.live(); err != nil {
		return nil, err
	}
	// One verify at a time: they share the scratch directory.
	r.verifyMu.Lock()
	defer r.verifyMu.Unlock()
	// The durable sequence is read before the snapshot, so the snapshot
	// holds at least the log up to it (commits may go on meanwhile).
	durable := r.durable.Load()
	snap := r.db.NewSnapshot()
	defer snap.Close()
	rep := &VerifyReport{}
	scratchDir := filepath.Join(r.dir, "verify.tmp")
	fs := r.opts.FS
	if err := fs.RemoveAll(scratchDir); err != nil {
		return nil, err
	}
	defer fs.RemoveAll(scratchDir)
	scratch, err := pebble.Open(scratchDir, &pebble.Options{FS: fs, Logger: pebbleLogger{&r.opts}, DisableWAL: true})
	if err != nil {
		return nil, fmt.Errorf("replica: verify: scratch database: %w", err)
	}
	defer scratch.Close()

	p := &replay{self: r.id, db: scratch, types: map[string]typeStats{}, maxOrigin: map[uuid.UUID]uint64{}}
	p.b = scratch.NewIndexedBatch()
	if err := r.replayLog(ctx, snap, durable, p, rep); err != nil {
		return nil, err
	}
	for typ, s := range p.types {
		p.b.Set(typeKey(typ), typeStatsValue(s), nil)
		rep.Records += s.Live
	}
	if err := p.b.Commit(pebble.NoSync); err != nil {
		return nil, err
	}

	// Derived keyspaces must equal the replay exactly.
	for _, ks := range []struct {
		prefix byte
		name   string
	}{
		{prefixOrigin, "identity index"}, {prefixRecord, "records"}, {prefixHistory, "history index"},
		{prefixProp, "property index"}, {prefixLUID, "LUIDs"},
		{prefixType, "type stats"},
	} {
		if err := compareKeyspace(snap, scratch, ks.prefix, ks.name, rep); err != nil {
			return nil, err
		}
	}

	// Digest.
	stored, c, err := snap.Get(metaKey(metaDigest))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		if p.dig != (digest{}) {
			rep.problem("no stored digest, but the log holds records")
		}
	case err != nil:
		return nil, err
	default:
		if !bytes.Equal(stored, p.dig.bytes()) {
			rep.problem("stored digest %x, replay gives %x", stored, p.dig.bytes())
		}
		c.Close()
	}

	// Tickets.
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixTicket}, UpperBound: []byte{prefixTicket + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		v, err := u64(it.Value())
		if len(k) != 17 || err != nil {
			rep.problem("malformed ticket key %x", k)
			continue
		}
		origin := uuid.UUID(k[1:])
		if have := p.maxOrigin[origin]; v > have {
			rep.problem("I4: ticket for %s is %d, but the log holds changesets from it only up to %d", origin, v, have)
		}
	}
	return rep, it.Error()
}

// replay rebuilds the derived keyspaces from the log in a scratch DB.
type replay struct {
	self      uuid.UUID
	db        *pebble.DB
	b         *pebble.Batch // indexed: reads see its writes
	types     map[string]typeStats
	dig       digest
	maxOrigin map[uuid.UUID]uint64
	pending   int
}

func (p *replay) state(k recKey) (*state, error) {
	v, c, err := p.b.Get(recordKey(k.typ, k.id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return decodeState(v)
}

func (r *Replica) replayLog(ctx context.Context, snap *pebble.Snapshot, durable uint64, p *replay, rep *VerifyReport) error {
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixLog}, UpperBound: []byte{prefixLog + 1}})
	if err != nil {
		return err
	}
	defer it.Close()
	want := uint64(1)
	for it.First(); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		seq, err := u64(it.Key()[1:])
		if err != nil {
			rep.problem("malformed log key %x", it.Key())
			continue
		}
		if seq != want {
			rep.problem("I2: the log jumps from %d to %d", want-1, seq)
		}
		want = seq + 1
		rep.Changesets++
		cs, err := changeset.Decode(it.Value())
		if err != nil {
			rep.problem("log entry %d: %v", seq, err)
			continue
		}
		cs.Seq, cs.Source = seq, r.id
		if cs.Origin == r.id && cs.OriginSeq != seq {
			rep.problem("local changeset at %d has origin sequence %d", seq, cs.OriginSeq)
		}
		if cs.Origin != r.id {
			k := originKey(cs.Origin, cs.OriginSeq)
			if v, c, err := p.b.Get(k); err == nil {
				first, _ := u64(v)
				c.Close()
				rep.problem("I10: changeset %s is in the log twice, at %d and %d", cs.ID(), first, seq)
			} else if !errors.Is(err, pebble.ErrNotFound) {
				return err
			}
			p.b.Set(k, appendU64(nil, seq), nil)
		}
		p.maxOrigin[cs.Origin] = max(p.maxOrigin[cs.Origin], cs.OriginSeq)
		if err := p.apply(cs, rep); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if want-1 < durable {
		rep.problem("I2: the log ends at %d but the replica reports %d as durable", want-1, durable)
	}
	return nil
}

func (p *replay) apply(cs *changeset.Changeset, rep *VerifyReport) error {
	for i := range cs.Changes {
		ch := &cs.Changes[i]
		k := recKey{ch.RecordType, ch.Record}
		cur, err := p.state(k)
		if err != nil {
			return err
		}
		// Local changesets were checked when written (I6), except
		// nullifications and resolutions; the writes of every changeset
		// take effect by stamp.
		checked := p.self == cs.Origin && !cs.IsNullification && !cs.IsResolution
		next, err := applyChange(cs, ch, cur, checked)
		if err != nil {
			rep.problem("I6: local changeset %d does not apply to the state before it: %v", cs.Seq, err)
			continue
		}
		sc := stagedChange{k: k, old: cur, new: next}
		stats, ok := p.types[k.typ]
		if !ok {
			stats.NextLUID = 1
		}
		putRecord(p.b, nil, cs.Seq, sc, &stats, &p.dig)
		p.types[k.typ] = stats
	}
	if p.pending++; p.pending >= 4096 {
		if err := p.b.Commit(pebble.NoSync); err != nil {
			return err
		}
		p.b, p.pending = p.db.NewIndexedBatch(), 0
	}
	return nil
}

// compareKeyspace walks one prefix in the replica and in the replay side by
// side and reports every key that is missing, extra or different.
func compareKeyspace(snap *pebble.Snapshot, want *pebble.DB, prefix byte, name string, rep *VerifyReport) error {
	opts := &pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}}
	a, err := snap.NewIter(opts)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := want.NewIter(opts)
	if err != nil {
		return err
	}
	defer b.Close()
	okA, okB := a.First(), b.First()
	for okA || okB {
		switch c := compareIterKeys(a, okA, b, okB); {
		case c < 0:
			rep.problem("I7: %s: key %x is not explained by the log", name, a.Key())
			okA = a.Next()
		case c > 0:
			rep.problem("I7: %s: key %x is missing", name, b.Key())
			okB = b.Next()
		default:
			if !bytes.Equal(a.Value(), b.Value()) {
				rep.problem("I7: %s: key %x holds %x, the log gives %x", name, a.Key(), a.Value(), b.Value())
			}
			okA, okB = a.Next(), b.Next()
		}
	}
	return errors.Join(a.Error(), b.Error())
}

func compareIterKeys(a *pebble.Iterator, okA bool, b *pebble.Iterator, okB bool) int {
	switch {
	case !okA:
		return 1
	case !okB:
		return -1
	}
	return bytes.Compare(a.Key(), b.Key())
}
