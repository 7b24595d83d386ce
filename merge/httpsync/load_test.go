package httpsync_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/merge/httpsync"
	"github.com/prophet-sync/prophet/replica"
)

var (
	loadFor     = flag.Duration("load.duration", 2*time.Second, "how long TestLoad keeps the load on")
	loadPullers = flag.Int("load.pullers", 50, "TestLoad's concurrent pullers (each into a replica of its own)")
	loadPushers = flag.Int("load.pushers", 10, "TestLoad's concurrent pushers")
	loadSubs    = flag.Int("load.subscribers", 20, "TestLoad's live subscribers")
)

// TestLoad puts one server under load on loopback: pullers (each pulling
// into a replica of its own, over and over), pushers (each committing on
// its replica and pushing), and live subscribers, while a writer commits on
// the served replica. Then it stops the load and checks: no error anywhere,
// every puller ends with the server's records (same digest), every
// subscriber got every changeset of the server's log exactly once, every
// pushed record is on the server. It logs the figures, and the peak heap of
// this process (server and clients together).
func TestLoad(t *testing.T) {
	a := newLocal(t, uuid.Nil)
	commit(t, a, 10)
	srv := serveLive(t, a, nil)
	rem := dial(t, srv.URL)
	db := a.R.DatabaseUUID()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		wg                      sync.WaitGroup
		errMu                   sync.Mutex
		errs                    []error
		commits, pushes, pulls  atomic.Int64
		pushed                  []uuid.UUID
		pushedMu                sync.Mutex
		peakHeap                atomic.Uint64
		integrated, subscribedN atomic.Int64
	)
	fail := func(who string, err error) {
		if err == nil || errors.Is(err, context.Canceled) {
			return
		}
		errMu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", who, err))
		errMu.Unlock()
	}
	go func() { // the peak heap, sampled
		for ctx.Err() == nil {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peakHeap.Load() {
				peakHeap.Store(m.HeapInuse)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// Subscribers first, so they see the whole run.
	type sub struct {
		mu   sync.Mutex
		seqs map[uint64]int
		last uint64
	}
	subs := make([]*sub, *loadSubs)
	subCtx, stopSubs := context.WithCancel(context.Background())
	var subWG sync.WaitGroup
	for i := range subs {
		s := &sub{seqs: map[uint64]int{}}
		subs[i] = s
		subWG.Add(1)
		go func() {
			defer subWG.Done()
			err := rem.Watch(subCtx, nil, func(cs *changeset.Changeset) error {
				s.mu.Lock()
				s.seqs[cs.Seq]++
				s.last = max(s.last, cs.Seq)
				s.mu.Unlock()
				subscribedN.Add(1)
				return nil
			})
			fail(fmt.Sprintf("subscriber %d", i), err)
		}()
	}

	// The writer, on the served replica.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if _, err := a.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"by": "writer", "n": fmt.Sprint(i)}}); err != nil {
				fail("writer", err)
				return
			}
			commits.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()

	// Pushers.
	for i := range *loadPushers {
		l := newLocal(t, db)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ctx.Err() == nil; j++ {
				cs, err := l.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Create, Set: map[string]string{"by": fmt.Sprintf("pusher %d", i), "n": fmt.Sprint(j)}})
				if err != nil {
					fail("pusher", err)
					return
				}
				if _, err := httpsync.Push(ctx, l, srv.URL, &httpsync.PushOptions{Client: fast}); err != nil {
					fail(fmt.Sprintf("pusher %d", i), err)
					return
				}
				pushedMu.Lock()
				pushed = append(pushed, cs.Changes[0].Record)
				pushedMu.Unlock()
				pushes.Add(1)
			}
		}()
	}

	// Pullers.
	pullers := make([]*merge.Local, *loadPullers)
	for i := range pullers {
		pullers[i] = newLocal(t, db)
	}
	start := time.Now()
	for i, l := range pullers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				rep, err := merge.Pull(ctx, rem, l, nil)
				if err != nil {
					fail(fmt.Sprintf("puller %d", i), err)
					return
				}
				integrated.Add(int64(rep.Integrated))
				pulls.Add(1)
			}
		}()
	}

	time.Sleep(*loadFor)
	stop()
	wg.Wait()
	loaded := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d errors under load, the first: %v", len(errs), errs[0])
	}

	// Level: every puller pulls once more; subscribers catch up. A push
	// whose client gave up at the stop may still be integrating on the
	// server: wait until its log stands still.
	for settle := time.Now().Add(10 * time.Second); time.Now().Before(settle); {
		before := a.R.LatestSeq()
		time.Sleep(300 * time.Millisecond)
		if a.R.LatestSeq() == before {
			break
		}
	}
	latest := a.R.LatestSeq()
	want := a.R.Digest()
	for i, l := range pullers {
		if _, err := merge.Pull(context.Background(), rem, l, nil); err != nil {
			t.Fatalf("puller %d, last pull: %v", i, err)
		}
		if got := l.R.Digest(); got != want {
			t.Fatalf("puller %d ends with digest %s, the server %s", i, got, want)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for i, s := range subs {
		for {
			s.mu.Lock()
			last := s.last
			s.mu.Unlock()
			if last >= latest {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("subscriber %d is at %d, the server at %d", i, last, latest)
			}
			time.Sleep(10 * time.Millisecond)
		}
		s.mu.Lock()
		for seq := uint64(1); seq <= latest; seq++ {
			if n := s.seqs[seq]; n != 1 {
				s.mu.Unlock()
				t.Fatalf("subscriber %d got changeset %d %d times", i, seq, n)
			}
		}
		s.mu.Unlock()
	}
	stopSubs()
	subWG.Wait()
	for _, id := range pushed {
		if _, err := a.R.Get("bug", id); err != nil {
			t.Fatalf("a pushed record is not on the server: %v", err)
		}
	}
	if len(errs) > 0 {
		t.Fatalf("%d errors, the first: %v", len(errs), errs[0])
	}
	t.Logf("load for %.1fs: %d pullers, %d pushers, %d live subscribers, 1 writer", loaded.Seconds(), *loadPullers, *loadPushers, *loadSubs)
	t.Logf("  writer commits %d, pushes %d, pulls %d (%d changesets integrated by pullers), live changesets delivered %d; server log %d changesets; errors 0",
		commits.Load(), pushes.Load(), pulls.Load(), integrated.Load(), subscribedN.Load(), latest)
	t.Logf("  peak Go heap in use (server and all clients in this process): %.1f MiB", float64(peakHeap.Load())/(1<<20))
	if peak := peakHeap.Load(); peak > 1<<30 {
		t.Fatalf("peak heap %d bytes: memory is not bounded", peak)
	}
}
