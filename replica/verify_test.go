package replica

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
)

// Each case damages one keyspace behind the engine's back; verify must name
// the invariant that broke. (The clean case is covered by every other test
// that calls Verify.)
func TestVerifyFindsDamage(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		damage func(r *Replica, id uuid.UUID) []byte // returns a key to delete, or nil
		want   string
	}{
		{"deleted log entry", func(r *Replica, id uuid.UUID) []byte { return logKey(2) }, "I2: the log jumps from 1 to 3"},
		{"lost index entry", func(r *Replica, id uuid.UUID) []byte { return propKey("bug", "status", "open", id) }, "I7: property index"},
		{"lost record", func(r *Replica, id uuid.UUID) []byte { return recordKey("bug", id) }, "I7: records"},
		{"lost history", func(r *Replica, id uuid.UUID) []byte { return historyKey("bug", id, 1) }, "I7: history index"},
		{"stray identity", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(originKey(uuid.New(), 3), appendU64(nil, 3), pebble.Sync)
			return nil
		}, "I7: identity index"},
		{"stray record", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(recordKey("bug", uuid.New()), encodeState(nil, &state{}), pebble.Sync)
			return nil
		}, "is not explained by the log"},
		{"changed value", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(recordKey("bug", id), encodeState(nil, &state{Props: []Prop{{"status", "closed"}}}), pebble.Sync)
			return nil
		}, "I7: records"},
		{"ticket ahead", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(ticketKey(r.id), appendU64(nil, 99), pebble.Sync)
			return nil
		}, "I4: ticket"},
		{"digest", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(metaKey(metaDigest), make([]byte, 32), pebble.Sync)
			return nil
		}, "stored digest"},
		{"duplicate changeset", func(r *Replica, id uuid.UUID) []byte {
			// A foreign changeset twice in the log: integrated, then its
			// bytes written again at the next sequence number.
			cs := &changeset.Changeset{Origin: uuid.New(), OriginSeq: 1, Created: time.Unix(1, 0),
				Changes: []changeset.Change{{RecordType: "note", Record: uuid.New(), Op: changeset.Add}}}
			if _, _, err := r.Integrate(context.Background(), cs); err != nil {
				panic(err)
			}
			enc, _ := changeset.Encode(nil, cs)
			r.db.Set(logKey(r.LatestSeq()+1), enc, pebble.Sync)
			return nil
		}, "I10: changeset"},
		{"garbage log entry", func(r *Replica, id uuid.UUID) []byte {
			r.db.Set(logKey(3), []byte{0x97, 0x01}, pebble.Sync)
			return nil
		}, "log entry 3: changeset: corrupt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Init(t.TempDir(), uuid.Nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			cs, err := r.Commit(ctx, Edit{Type: "bug", Op: Create, Set: map[string]string{"status": "new"}})
			if err != nil {
				t.Fatal(err)
			}
			id := cs.Changes[0].Record
			for _, v := range []string{"open", "closed", "open"} {
				if _, err := r.Commit(ctx, Edit{Type: "bug", Record: id, Op: Update, Set: map[string]string{"status": v}}); err != nil {
					t.Fatal(err)
				}
			}
			if rep, err := r.Verify(ctx); err != nil || !rep.OK() {
				t.Fatalf("clean replica: %v %v", rep.Problems, err)
			}
			if k := tc.damage(r, id); k != nil {
				if err := r.db.Delete(k, pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := r.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(rep.Problems, "\n")
			if !strings.Contains(joined, tc.want) {
				t.Fatalf("verify reported:\n%s\nwant a line with %q", joined, tc.want)
			}
		})
	}
}

// Verify on a replica that is being written, and two verifies at once, find
// nothing wrong with a healthy replica.
func TestVerifyWhileCommitting(t *testing.T) {
	ctx := context.Background()
	r, err := Init(t.TempDir(), uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := r.Commit(ctx, Edit{Type: "bug", Op: Create, Set: map[string]string{"a": "b"}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var vg sync.WaitGroup
	for range 3 {
		vg.Add(1)
		go func() {
			defer vg.Done()
			rep, err := r.Verify(ctx)
			if err != nil || !rep.OK() {
				t.Errorf("verify during commits: %v %v", rep, err)
			}
		}()
	}
	vg.Wait()
	close(stop)
	wg.Wait()
}
