package foreign

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
)

func openTestState(t *testing.T) (*State, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	st, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

var t0 = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

func submit(t *testing.T, st *State, op Op) *Op {
	t.Helper()
	out, err := st.Submit(op, t0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func stateOf(t *testing.T, st *State, id uint64) *Op {
	t.Helper()
	op, err := st.loadOp(id)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// Seed 003's rules, one by one.
func TestSubmitRules(t *testing.T) {
	st, _ := openTestState(t)
	rec := Ref{Type: "ticket", Record: uuid.New()}
	other := Ref{Type: "ticket", Record: uuid.New()}

	a := submit(t, st, Op{Dir: Inbound, Ref: rec, Version: 10})
	if a.State != Queued {
		t.Fatalf("first op: %s, want queued", a.State)
	}
	// The same version again: a duplicate of the first.
	if d := submit(t, st, Op{Dir: Inbound, Ref: rec, Version: 10}); d.State != Duplicate || d.By != a.ID {
		t.Fatalf("same version: %s by %d, want duplicate by %d", d.State, d.By, a.ID)
	}
	// A newer one cancels the older queued one.
	b := submit(t, st, Op{Dir: Inbound, Ref: rec, Version: 20})
	if b.State != Queued {
		t.Fatalf("newer op: %s", b.State)
	}
	if got := stateOf(t, st, a.ID); got.State != Canceled || got.By != b.ID {
		t.Fatalf("older queued op: %s by %d, want canceled by %d", got.State, got.By, b.ID)
	}
	// An older one arriving late (out of order) is dropped for the newer.
	if c := submit(t, st, Op{Dir: Inbound, Ref: rec, Version: 15}); c.State != Dropped || c.By != b.ID {
		t.Fatalf("late older op: %s by %d, want dropped by %d", c.State, c.By, b.ID)
	}
	// Other records and the other direction are not affected.
	if o := submit(t, st, Op{Dir: Inbound, Ref: other, Version: 15}); o.State != Queued {
		t.Fatalf("another record's op: %s", o.State)
	}
	if o := submit(t, st, Op{Dir: Outbound, Ref: rec, Version: 1}); o.State != Queued {
		t.Fatalf("an outbound op of the record: %s", o.State)
	}
	// An outbound op that cancels an older one takes its properties.
	x := submit(t, st, Op{Dir: Outbound, Ref: other, Version: 5, Props: []string{"subject"}, Create: true})
	y := submit(t, st, Op{Dir: Outbound, Ref: other, Version: 6, Props: []string{"status"}})
	if got := stateOf(t, st, x.ID); got.State != Canceled {
		t.Fatalf("older outbound op: %s", got.State)
	}
	if fmt.Sprint(y.Props) != "[status subject]" || !y.Create {
		t.Fatalf("the newer outbound op carries %v create=%v, want [status subject] create=true", y.Props, y.Create)
	}
	// The audit trail of one record lists its ops, oldest first.
	ops, err := st.Ops(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 5 || ops[0].ID != a.ID {
		t.Fatalf("record's ops: %d, first %d", len(ops), ops[0].ID)
	}
}

// Ops that were processing when the process died run again after open.
func TestRecoverProcessing(t *testing.T) {
	st, dir := openTestState(t)
	rec := Ref{Type: "ticket", Record: uuid.New()}
	op := submit(t, st, Op{Dir: Outbound, Ref: rec, Version: 1})
	// As Run marks it before it calls the handler.
	if err := st.finish(op, Queued, Processing, "", t0, func(*Writer) error { op.Attempts++; return nil }); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err := OpenState(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := stateOf(t, st, op.ID); got.State != Queued {
		t.Fatalf("after reopening: %s, want queued", got.State)
	}
	// New ops get new IDs after the recovered ones.
	if next := submit(t, st, Op{Dir: Outbound, Ref: Ref{Type: "x", Record: uuid.New()}, Version: 1}); next.ID != op.ID+1 {
		t.Fatalf("next op ID %d, want %d", next.ID, op.ID+1)
	}
	var ran atomic.Int32
	rep, err := st.Run(context.Background(), Outbound, 2, func() time.Time { return t0 }, func(ctx context.Context, o *Op) (func(*Writer) error, error) {
		ran.Add(1)
		if o.ID == op.ID && o.Attempts != 2 {
			return nil, fmt.Errorf("attempts %d, want 2", o.Attempts)
		}
		return nil, nil
	})
	if err != nil || rep.Completed != 2 || ran.Load() != 2 {
		t.Fatalf("run: %+v %v", rep, err)
	}
}

// Run: one op per record at a time, records in parallel, a failure
// stops only its op, and an op that waits for another runs after it.
func TestRun(t *testing.T) {
	st, _ := openTestState(t)
	recs := make([]Ref, 6)
	for i := range recs {
		recs[i] = Ref{Type: "ticket", Record: uuid.New()}
		submit(t, st, Op{Dir: Outbound, Ref: recs[i], Version: 1})
	}
	// recs[0] has a second op queued behind a processing one: Submit
	// queues it (it does not cancel a processing op).
	var (
		mu      sync.Mutex
		running = map[Ref]int{}
		maxPar  int
		cur     int
		order   []Ref
		waited  atomic.Bool
	)
	h := func(ctx context.Context, op *Op) (func(*Writer) error, error) {
		mu.Lock()
		running[op.Ref]++
		if running[op.Ref] > 1 {
			mu.Unlock()
			return nil, errors.New("two ops of one record at once")
		}
		cur++
		maxPar = max(maxPar, cur)
		order = append(order, op.Ref)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		running[op.Ref]--
		cur--
		mu.Unlock()
		switch op.Ref {
		case recs[1]:
			return nil, errors.New("the remote refused it")
		case recs[2]:
			// Waits for recs[3] (its ticket, say) the first time.
			if !waited.Swap(true) {
				return nil, ErrLater
			}
		}
		return func(w *Writer) error { return w.SetCursor("done-"+op.Ref.Record.String(), "1") }, nil
	}
	rep, err := st.Run(context.Background(), Outbound, 3, func() time.Time { return t0 }, h)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Completed != 5 || rep.Errored != 1 || len(rep.Errors) != 1 {
		t.Fatalf("run: %+v", rep)
	}
	if maxPar < 2 || maxPar > 3 {
		t.Fatalf("ran %d at once, want 2 or 3 (workers 3)", maxPar)
	}
	for _, r := range recs {
		v, err := st.Cursor("done-" + r.Record.String())
		if err != nil {
			t.Fatal(err)
		}
		if (v == "1") != (r != recs[1]) {
			t.Fatalf("%s: extra writes %q", r, v)
		}
	}
	ops, err := st.Ops(&recs[1])
	if err != nil {
		t.Fatal(err)
	}
	if ops[0].State != Errored || ops[0].Reason != "the remote refused it" {
		t.Fatalf("failed op: %s %q", ops[0].State, ops[0].Reason)
	}
	// Requeue puts it back, and the next run completes it.
	n, err := st.Requeue(nil, t0)
	if err != nil || n != 1 {
		t.Fatalf("requeue: %d %v", n, err)
	}
}

// An op that keeps waiting does not spin: Run returns with it queued.
func TestRunWaitingReturns(t *testing.T) {
	st, _ := openTestState(t)
	submit(t, st, Op{Dir: Outbound, Ref: Ref{Type: "comment", Record: uuid.New()}, Version: 1})
	calls := 0
	rep, err := st.Run(context.Background(), Outbound, 2, func() time.Time { return t0 }, func(context.Context, *Op) (func(*Writer) error, error) {
		calls++
		return nil, fmt.Errorf("%w: its ticket is not there yet", ErrLater)
	})
	if err != nil || rep.Waiting != 1 || calls != 1 {
		t.Fatalf("run: %+v %v, %d calls", rep, err, calls)
	}
}
