package replica_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// TestCrashKeepsAcknowledgedCommits crashes a replica under concurrent
// commits over Pebble's crashable in-memory filesystem. The crash keeps a
// random share of the unsynced writes. After reopening, every commit
// acknowledged before the crash is present, the log has no gap, and verify
// finds every invariant intact.
func TestCrashKeepsAcknowledgedCommits(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	rounds := 12
	if testing.Short() {
		rounds = 4
	}
	for round := range rounds {
		seed := seed + uint64(round)
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { crashRound(t, seed) })
	}
}

func crashRound(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	fs := vfs.NewCrashableMem()
	opts := testOptions(fs)
	r, err := replica.Init("/replica", uuid.Nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	// acked[seq] = a record the changeset at seq touched, once Commit has
	// returned for it.
	var acked sync.Map
	var ackedN atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []uuid.UUID
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e := replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"w": fmt.Sprint(w), "i": fmt.Sprint(i)}}
				if len(mine) > 0 && i%3 == 0 {
					e = replica.Edit{Type: "bug", Record: mine[i%len(mine)], Op: replica.Update, Set: map[string]string{"i": fmt.Sprint(i)}}
				}
				cs, err := r.Commit(ctx, e)
				if err != nil {
					return // the replica was closed under us
				}
				if e.Op == replica.Create {
					mine = append(mine, cs.Changes[0].Record)
				}
				acked.Store(cs.Seq, cs.Changes[0].Record)
				ackedN.Add(1)
			}
		}()
	}
	// Crash a random while after the first acknowledgement (a loaded
	// machine can take longer than the sleep to make the first one).
	for deadline := time.Now().Add(30 * time.Second); ackedN.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(time.Duration(rng.IntN(30)+5) * time.Millisecond)
	// Everything acknowledged before the clone must survive it.
	before := map[uint64]uuid.UUID{}
	acked.Range(func(k, v any) bool { before[k.(uint64)] = v.(uuid.UUID); return true })
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rand.New(rand.NewPCG(seed, 1))})
	close(stop)
	r.Close()
	wg.Wait()

	opts2 := testOptions(crashed)
	r2, err := replica.Open("/replica", opts2)
	if err != nil {
		t.Fatalf("reopen after crash: %v", err)
	}
	defer r2.Close()
	if len(before) == 0 {
		t.Fatalf("no commit was acknowledged before the crash; the test proves nothing")
	}
	for seq, id := range before {
		cs, err := r2.ReadChangeset(seq)
		if err != nil {
			t.Fatalf("acknowledged changeset %d lost: %v", seq, err)
		}
		if cs.Changes[0].Record != id {
			t.Fatalf("changeset %d touches %s, acknowledged as %s", seq, cs.Changes[0].Record, id)
		}
	}
	it := r2.Log(1)
	n := uint64(0)
	for it.Next() {
		n++
	}
	if err := it.Close(); err != nil || n != r2.LatestSeq() {
		t.Fatalf("log scan: %d entries, latest %d, %v", n, r2.LatestSeq(), err)
	}
	mustVerify(t, r2)
	// The replica keeps working after recovery.
	if _, err := r2.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create}); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, r2)
	t.Logf("%d acknowledged before the crash, %d durable after", len(before), n)
}
