package bench

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one measured phase.
type Result struct {
	Name    string `json:"name"`
	Writers int    `json:"writers"`
	// Ops counts changesets (or, for raw Pebble, values of a changeset's
	// size), not calls: a batch of 1000 counts 1000.
	Ops     int64   `json:"ops"`
	Seconds float64 `json:"seconds"`
	Rate    float64 `json:"changesets_per_sec"`
	// PeakHeap is the highest runtime.MemStats.HeapInuse sampled during
	// the phase (every sampleEvery), after a GC before it started.
	PeakHeap uint64 `json:"peak_heap_inuse_bytes"`
	// Baseline names the raw Pebble phase this one is compared with, and
	// Ratio is Rate / that phase's Rate. Both are empty for raw phases.
	Baseline string  `json:"baseline,omitempty"`
	Ratio    float64 `json:"ratio_to_baseline,omitempty"`
}

const sampleEvery = 10 * time.Millisecond

// heapSampler records the peak HeapInuse while it runs.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

// newHeap collects garbage, so that what follows starts from what is live,
// and takes a first sample. Call sample to take more.
func newHeap() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	h.sample()
	return h
}

// startHeap collects garbage, so that the phase starts from what is live,
// and samples HeapInuse every sampleEvery until stopped.
func startHeap() *heapSampler {
	h := newHeap()
	go func() {
		defer close(h.done)
		t := time.NewTicker(sampleEvery)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.sample()
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for {
		p := h.peak.Load()
		if ms.HeapInuse <= p || h.peak.CompareAndSwap(p, ms.HeapInuse) {
			return ms.HeapInuse
		}
	}
}

// finish stops sampling and returns the peak, with one last sample.
func (h *heapSampler) finish() uint64 {
	close(h.stop)
	<-h.done
	h.sample()
	return h.peak.Load()
}

// op does some work as writer w and returns how many changesets it made
// durable. An op may run past the deadline it is given only to finish (a
// bulk load stops taking units at the deadline, then syncs).
type op func(ctx context.Context, w int, deadline time.Time) (int, error)

// measure runs op from writers goroutines, each calling it again and again
// until d has passed (d <= 0: each calls it once, with no deadline), and
// times the whole.
func measure(ctx context.Context, name string, writers int, d time.Duration, f op) (Result, error) {
	h := startHeap()
	var (
		ops      atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var deadline time.Time // zero: none
	if d > 0 {
		deadline = start.Add(d)
	}
	more := func(calls int) bool {
		if d <= 0 {
			return calls == 0
		}
		return time.Now().Before(deadline)
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for calls := 0; ctx.Err() == nil && more(calls); calls++ {
				n, err := f(ctx, w, deadline)
				ops.Add(int64(n))
				if err != nil {
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res := Result{Name: name, Writers: writers, Ops: ops.Load(), Seconds: elapsed.Seconds(), PeakHeap: h.finish()}
	if res.Seconds > 0 {
		res.Rate = float64(res.Ops) / res.Seconds
	}
	if firstErr != nil {
		return res, firstErr
	}
	return res, ctx.Err()
}

// add adds another turn of the same phase to r.
func (r *Result) add(o Result) {
	r.Name, r.Writers = o.Name, o.Writers
	r.Ops += o.Ops
	r.Seconds += o.Seconds
	r.PeakHeap = max(r.PeakHeap, o.PeakHeap)
	if r.Seconds > 0 {
		r.Rate = float64(r.Ops) / r.Seconds
	}
}

// compare sets r's baseline and ratio.
func (r *Result) compare(base Result) {
	r.Baseline = base.Name
	if base.Rate > 0 {
		r.Ratio = r.Rate / base.Rate
	}
}
