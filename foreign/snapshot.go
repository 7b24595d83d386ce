package foreign

import (
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// Snapshots translates the current state of remote objects into
// changesets, for a remote that keeps no history of its objects' fields
// (GitHub's issues, Phabricator's revisions): each object listed is
// compared with its snapshot in the state handle, and the difference
// becomes a changeset with the snapshot's values as old values.
//
// Such changesets are this gateway replica's view of the remote: their
// origin is SnapshotOrigin (the gateway replica's own for this remote),
// numbered by the gateway from the feed position on, and their creator is
// the remote's address, by which every gateway replica knows them as the
// remote's (RemoteChangesets).
//
// One Snapshots serves one pull: it overlays the state handle with what
// the pull saw so far, which is written by each Change's Record once it is
// integrated.
type Snapshots struct {
	st      *State
	creator string
	origin  uuid.UUID
	pos     uint64
	// name is the record UUID of a remote object no push made, from its
	// remote key: name-based, so every gateway replica agrees on it.
	name    func(key string) uuid.UUID
	snaps   map[string]map[string]string
	refs    map[string]Ref
	claimed map[Ref]string // refs reversed: the record each object of this pull took
}

// SnapshotOrigin is the origin of the changesets a gateway replica makes
// from the snapshots of remote creator.
func SnapshotOrigin(st *State, creator string) (uuid.UUID, error) {
	gw, err := st.Gateway()
	if err != nil {
		return uuid.Nil, err
	}
	return uuid.NewSHA1(NameUUID(creator), gw[:]), nil
}

// NewSnapshots starts a pull's translation after feed position after.
// Numbering goes on after the feed position and after every changeset of
// the origin the gateway replica has (a crash between integrating and
// moving the cursor leaves the cursor behind; a number is never given
// twice).
func NewSnapshots(st *State, creator string, name func(key string) uuid.UUID, after uint64) (*Snapshots, error) {
	origin, err := SnapshotOrigin(st, creator)
	if err != nil {
		return nil, err
	}
	pos := after
	if v := st.View(); v != nil {
		pos = max(after, v.Ticket(origin))
	}
	return &Snapshots{st: st, creator: creator, origin: origin, pos: pos, name: name,
		snaps: map[string]map[string]string{}, refs: map[string]Ref{}, claimed: map[Ref]string{}}, nil
}

// Next takes the next feed position, for a Change that brings no object
// (a cursor's move).
func (s *Snapshots) Next() uint64 {
	s.pos++
	return s.pos
}

// Snapshot is the object's props as last seen (nil: never), this pull's
// first.
func (s *Snapshots) Snapshot(key string) (map[string]string, error) {
	if m, ok := s.snaps[key]; ok {
		return m, nil
	}
	return s.st.Snapshot(key)
}

// Same says whether the object's snapshot equals props.
func (s *Snapshots) Same(key string, props map[string]string) bool {
	snap, err := s.Snapshot(key)
	return err == nil && snap != nil && maps.Equal(snap, props)
}

// Known says whether the remote object key has a record: mapped in the
// state handle, or met in this pull.
func (s *Snapshots) Known(key string) (bool, error) {
	if _, ok := s.refs[key]; ok {
		return true, nil
	}
	_, ok, err := s.st.Record(key)
	return ok, err
}

// Ref is the record of the remote object key, of type typ: the one it is
// mapped to, else the one its marker names (a push made it), else the
// name-based one.
func (s *Snapshots) Ref(key, typ string, marker uuid.UUID) (Ref, error) {
	if r, ok := s.refs[key]; ok {
		return r, nil
	}
	r, ok, err := s.st.Record(key)
	if err != nil || ok {
		return r, err
	}
	r = Ref{Type: typ, Record: s.name(key)}
	if marker != uuid.Nil {
		// A marker names the record a push made the object for, unless
		// that record is another object's already (a text copied with its
		// marker): then the object is a record of its own.
		m := Ref{Type: typ, Record: marker}
		other, mapped, err := s.st.Remote(m)
		if err != nil {
			return r, err
		}
		k, taken := s.claimed[m]
		if (!mapped || other == key) && (!taken || k == key) {
			r = m
		}
	}
	return r, nil
}

// Object emits the change that takes the object's record from its
// snapshot to props (nothing when they are equal: unchanged, or our own
// push's answer). extra, if not nil, runs with the change's Record.
func (s *Snapshots) Object(typ, key string, props map[string]string, marker uuid.UUID, updated time.Time, extra func(w *Writer) error, emit func(Change) error) error {
	snap, err := s.Snapshot(key)
	if err != nil {
		return err
	}
	if snap != nil && maps.Equal(snap, props) {
		return nil
	}
	ref, err := s.Ref(key, typ, marker)
	if err != nil {
		return err
	}
	// Old values: the record's, for the properties with no local edit
	// still to push (the record holds the remote's state there, as this or
	// another gateway replica saw it: no conflict to find); the snapshot's
	// for the others, so that a remote edit of a field edited here too is
	// met as a conflict.
	var rec *replica.Record
	var pending map[string]bool
	if v := s.st.View(); v != nil {
		if rec, err = v.Record(ref); err != nil {
			return err
		}
		if rec != nil {
			if pending, err = v.Pending(ref); err != nil {
				return err
			}
		}
	}
	ch := changeset.Change{RecordType: typ, Record: ref.Record, Op: changeset.Update}
	if snap == nil && rec == nil {
		ch.Op = changeset.Add
	}
	names := map[string]bool{}
	for k := range props {
		names[k] = true
	}
	for k := range snap {
		names[k] = true
	}
	for _, k := range slices.Sorted(maps.Keys(names)) {
		oldV, newV := snap[k], props[k]
		if rec != nil && !pending[k] {
			oldV = rec.Get(k)
		}
		if oldV == newV || (ch.Op == changeset.Add && newV == "") {
			continue
		}
		if ch.Op == changeset.Add {
			oldV = ""
		}
		ch.Props = append(ch.Props, changeset.PropChange{Name: k, Old: oldV, New: newV})
	}
	s.snaps[key], s.refs[key], s.claimed[ref] = props, ref, key
	s.pos++
	c := Change{Pos: s.pos, Ref: ref, Version: updated.UnixNano(), State: props, Record: func(w *Writer) error {
		if err := w.Map(key, ref); err != nil {
			return err
		}
		if err := w.SetSnapshot(key, props); err != nil {
			return err
		}
		if extra != nil {
			return extra(w)
		}
		return nil
	}}
	if len(ch.Props) > 0 { // else the record holds it already
		c.Changeset = &changeset.Changeset{Origin: s.origin, OriginSeq: s.pos, Creator: s.creator, Created: updated.UTC(),
			Changes: []changeset.Change{ch}}
	}
	return emit(c)
}
