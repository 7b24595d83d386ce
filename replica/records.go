package replica

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// Record is a live record as materialized from the log.
type Record struct {
	Type string
	UUID uuid.UUID
	LUID uint64
	// Creator and Origin come from the changeset that added the record: who
	// made it and on which replica. Created is that changeset's time.
	Creator string
	Origin  uuid.UUID
	Created time.Time
	// Props is sorted by name; values are never "".
	Props []Prop
}

// RecordJSON is a record's JSON form: what prophet show|list|export --json
// print, what import reads, and what prophet serve's records API sends.
type RecordJSON struct {
	Type    string            `json:"type"`
	UUID    string            `json:"uuid"`
	LUID    uint64            `json:"luid"`
	Creator string            `json:"creator"`
	Origin  string            `json:"origin"`
	Created string            `json:"created"` // RFC 3339, nanoseconds, UTC
	Props   map[string]string `json:"props"`
}

// ToJSON returns rec's JSON form.
func (rec *Record) ToJSON() *RecordJSON {
	props := make(map[string]string, len(rec.Props))
	for _, p := range rec.Props {
		props[p.Name] = p.Value
	}
	id := func(u uuid.UUID) string {
		if u == uuid.Nil {
			return ""
		}
		return u.String()
	}
	return &RecordJSON{Type: rec.Type, UUID: id(rec.UUID), LUID: rec.LUID, Creator: rec.Creator,
		Origin: id(rec.Origin), Created: rec.Created.UTC().Format(time.RFC3339Nano), Props: props}
}

// Get returns the value of a property, "" when it is absent.
func (rec *Record) Get(name string) string {
	s := state{Props: rec.Props}
	return s.get(name)
}

func (r *Replica) get(key []byte) ([]byte, bool, error) {
	v, c, err := r.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	out := bytes.Clone(v)
	c.Close()
	return out, true, nil
}

// readState returns a record's state, live or not, nil if the replica never
// saw it.
func (r *Replica) readState(typ string, id uuid.UUID) (*state, error) {
	v, ok, err := r.get(recordKey(typ, id))
	if err != nil || !ok {
		return nil, err
	}
	return r.decodeStateOf(typ, id, v)
}

// decodeStateOf decodes the R value v of typ/id.
func (r *Replica) decodeStateOf(typ string, id uuid.UUID, v []byte) (*state, error) {
	s, err := decodeState(v)
	if err != nil {
		return nil, fmt.Errorf("replica %s: %s %s: %w (run prophet verify)", r.dir, typ, id, err)
	}
	return s, nil
}

// everSeen reports whether typ/id has any history here (live or deleted).
func (r *Replica) everSeen(typ string, id uuid.UUID) (bool, error) {
	lo := append(typePrefix(prefixHistory, typ), id[:]...)
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return false, err
	}
	defer it.Close()
	return it.First(), it.Error()
}

// maxIntegrated is the highest origin sequence number the log holds from
// origin (0 if none).
func (r *Replica) maxIntegrated(origin uuid.UUID) (uint64, error) {
	return r.lastSeqUnder(append([]byte{prefixOrigin}, origin[:]...))
}

// lastSeqUnder returns the big-endian uint64 that ends the last key with
// prefix lo (0 if there is none): the last log entry, or the highest
// origin sequence in the identity index.
func (r *Replica) lastSeqUnder(lo []byte) (uint64, error) {
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	return u64(it.Key()[len(lo):])
}

func (r *Replica) toRecord(typ string, id uuid.UUID, s *state) (*Record, error) {
	return &Record{Type: typ, UUID: id, LUID: s.LUID, Creator: s.Creator, Origin: s.Origin,
		Created: timeFromNanos(s.Created), Props: s.Props}, nil
}

// Get returns the live record typ/id, or an error wrapping ErrNotFound.
func (r *Replica) Get(typ string, id uuid.UUID) (*Record, error) {
	if err := r.live(); err != nil {
		return nil, err
	}
	s, err := r.readState(typ, id)
	if err != nil {
		return nil, err
	}
	if s.visible() == nil {
		return nil, fmt.Errorf("%w: no live %s %s", ErrNotFound, typ, id)
	}
	return r.toRecord(typ, id, s)
}

// List calls fn for each live record of typ whose properties equal every
// value in filter ("" matches records without the property), in UUID order,
// streaming: memory does not grow with the number of records. An equality
// filter on a non-empty value is answered from the property index.
func (r *Replica) List(typ string, filter map[string]string, fn func(*Record) error) error {
	if err := r.live(); err != nil {
		return err
	}
	// Pick one indexed filter to drive the scan; check the rest per record.
	var drive string
	for name, v := range filter {
		if v != "" && (drive == "" || name < drive) {
			drive = name
		}
	}
	if drive == "" {
		lo := typePrefix(prefixRecord, typ)
		it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
		if err != nil {
			return err
		}
		defer it.Close()
		for it.First(); it.Valid(); it.Next() {
			id, err := keyUUID(it.Key())
			if err != nil {
				return err
			}
			s, err := decodeState(it.Value())
			if err != nil {
				return err
			}
			if !s.Live {
				continue
			}
			if err := r.emit(typ, id, s, filter, fn); err != nil {
				return err
			}
		}
		return it.Error()
	}
	lo := propPrefix(typ, drive, filter[drive])
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != len(lo)+16 {
			return fmt.Errorf("%w: property index key %x", ErrCorrupt, k)
		}
		id, _ := uuid.FromBytes(k[len(lo):])
		s, err := r.readState(typ, id)
		if err != nil {
			return err
		}
		if s.visible() == nil {
			return fmt.Errorf("%w: property index names %s %s, which is not live (run prophet verify)", ErrCorrupt, typ, id)
		}
		if err := r.emit(typ, id, s, filter, fn); err != nil {
			return err
		}
	}
	return it.Error()
}

func (r *Replica) emit(typ string, id uuid.UUID, s *state, filter map[string]string, fn func(*Record) error) error {
	for name, v := range filter {
		if s.get(name) != v {
			return nil
		}
	}
	rec, err := r.toRecord(typ, id, s)
	if err != nil {
		return err
	}
	return fn(rec)
}

// History returns the changesets that touched typ/id, oldest first, live or
// deleted. It fails with ErrNotFound if the replica never saw the record.
func (r *Replica) History(typ string, id uuid.UUID, fn func(*changeset.Changeset) error) error {
	if err := r.live(); err != nil {
		return err
	}
	lo := append(typePrefix(prefixHistory, typ), id[:]...)
	it, err := r.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return err
	}
	defer it.Close()
	n := 0
	durable := r.durable.Load()
	for it.First(); it.Valid(); it.Next() {
		seq, err := u64(it.Key()[len(lo):])
		if err != nil {
			return err
		}
		if seq > durable {
			break // applied but not yet synced: not history yet (I5)
		}
		cs, err := r.ReadChangeset(seq)
		if err != nil {
			return err
		}
		n++
		if err := fn(cs); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: this replica has never held %s %s", ErrNotFound, typ, id)
	}
	return nil
}

// ResolveID turns what a person typed into a record UUID of typ: a LUID
// ("3"), a full UUID, or a unique prefix of one's hex digits (dashes
// optional). Deleted records resolve too, so their history can be shown. An
// ambiguous prefix returns *AmbiguousIDError listing the candidates.
func (r *Replica) ResolveID(typ, s string) (uuid.UUID, error) {
	if err := r.live(); err != nil {
		return uuid.Nil, err
	}
	if l, err := strconv.ParseUint(s, 10, 64); err == nil && !strings.HasPrefix(s, "0") {
		v, ok, err := r.get(luidRevKey(typ, l))
		if err != nil {
			return uuid.Nil, err
		}
		if ok {
			return uuid.FromBytes(v)
		}
		// Fall through: it may also be a UUID prefix made of digits.
	}
	if id, err := uuid.Parse(s); err == nil {
		if known, err := r.everSeen(typ, id); err != nil {
			return uuid.Nil, err
		} else if !known {
			return uuid.Nil, fmt.Errorf("%w: no %s %s here", ErrNotFound, typ, id)
		}
		return id, nil
	}
	hexs := strings.ToLower(strings.ReplaceAll(s, "-", ""))
	if len(hexs) < 4 || len(hexs) > 32 {
		return uuid.Nil, fmt.Errorf("%w: %q is not a %s LUID, UUID or UUID prefix of 4 or more hex digits", ErrNotFound, s, typ)
	}
	if _, err := hex.DecodeString(hexs + strings.Repeat("0", len(hexs)%2)); err != nil {
		return uuid.Nil, fmt.Errorf("%w: %q is not a %s LUID, UUID or UUID prefix", ErrNotFound, s, typ)
	}
	// The prefix covers UUIDs from hexs000… to hexsfff…
	loID, _ := hex.DecodeString(hexs + strings.Repeat("0", 32-len(hexs)))
	hiID, _ := hex.DecodeString(hexs + strings.Repeat("f", 32-len(hexs)))
	// Every record ever seen has history, live or deleted: scan H.
	base := typePrefix(prefixHistory, typ)
	it, err := r.db.NewIter(&pebble.IterOptions{
		LowerBound: append(slices.Clone(base), loID...),
		UpperBound: prefixEnd(append(slices.Clone(base), hiID...)),
	})
	if err != nil {
		return uuid.Nil, err
	}
	defer it.Close()
	var cands []Candidate
	more := false
	for valid := it.First(); valid; {
		id, err := keyUUID(it.Key())
		if err != nil {
			return uuid.Nil, err
		}
		// Skip the rest of this record's history.
		valid = it.SeekGE(prefixEnd(append(slices.Clone(base), id[:]...)))
		if len(cands) == maxCandidates {
			more = true
			break
		}
		l, err := r.LUID(typ, id)
		if err != nil {
			return uuid.Nil, err
		}
		cands = append(cands, Candidate{UUID: id, LUID: l})
	}
	if err := it.Error(); err != nil {
		return uuid.Nil, err
	}
	switch len(cands) {
	case 0:
		return uuid.Nil, fmt.Errorf("%w: no %s matches %q", ErrNotFound, typ, s)
	case 1:
		return cands[0].UUID, nil
	}
	return uuid.Nil, &AmbiguousIDError{Type: typ, Prefix: s, Candidates: cands, More: more}
}

// maxCandidates is how many records an ambiguous ID error lists.
const maxCandidates = 10

// LUID returns the local ID of typ/id, live or deleted (0 if the replica
// never saw it).
func (r *Replica) LUID(typ string, id uuid.UUID) (uint64, error) {
	if err := r.live(); err != nil {
		return 0, err
	}
	s, err := r.readState(typ, id)
	if err != nil || s == nil {
		return 0, err
	}
	return s.LUID, nil
}

func sortCounts(c []TypeCount) {
	slices.SortFunc(c, func(a, b TypeCount) int { return strings.Compare(a.Type, b.Type) })
}
