package replica_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// The real kill -9 test. TestKill9 re-executes this test binary as a child
// (TestKill9Helper, selected by -test.run and told what to do by the
// environment) that opens a replica on the real filesystem and commits as
// fast as it can from several goroutines: creates, updates and deletes of
// earlier records, two-record changesets and small bulk loads. After each
// Commit (or Bulk) returns, the child prints one line per record touched:
//
//	durable SEQ UUID OP
//
// The parent kills the child with SIGKILL at a random moment, 50-500 ms
// after the child says it is ready (in one round of four, after it starts:
// perhaps in the middle of Open and recovery). It reopens the replica and
// checks that everything the child was told is durable is there: each
// reported sequence number holds a changeset that touches the reported
// record with the reported op, the log runs 1..LatestSeq with no gap, every
// reported record that no changeset deletes is readable, and Verify finds
// nothing wrong. Then it starts the next round on the same replica.
//
// Unlike the crashable-memory test, this exercises the real OS, the real
// page cache and fsync, and kills in the middle of anything, Open included.

const (
	killEnvDir  = "PROPHET_KILL9_DIR"  // the child's replica directory
	killEnvSeed = "PROPHET_KILL9_SEED" // the child's random seed
	killType    = "ticket"
	// killCommitters is how many goroutines of the child commit at once.
	killCommitters = 4
	// killChildLife bounds a child whose parent vanished.
	killChildLife = 20 * time.Second
)

// killReport is one line the child printed.
type killReport struct {
	seq uint64
	id  uuid.UUID
	op  changeset.Op
}

func TestKill9(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(killEnvSeed); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with %s=%d)", seed, killEnvSeed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	dir := t.TempDir()
	r, err := replica.Init(dir, uuid.Nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	var (
		all    []killReport // every line of every round
		latest uint64       // the log's end after the last round
	)
	const rounds = 6
	for round := range rounds {
		// One round in four kills the child counting from its start, so
		// perhaps while it opens the replica and recovers from the last
		// kill; the others count from when it is ready to commit.
		delay := time.Duration(50+rng.IntN(451)) * time.Millisecond
		early := round%4 == 3
		got := killChild(t, dir, seed+uint64(round)+1, delay, early)
		all = append(all, got...)
		from := "ready"
		if early {
			from = "start"
		}
		t.Logf("round %d: killed %v after %s, %d durable lines (%d in all)", round, delay, from, len(got), len(all))
		latest = checkAfterKill(t, dir, all, got, latest)
		if t.Failed() {
			return
		}
	}
	if len(all) == 0 {
		t.Fatalf("no child reported a single durable commit in %d rounds: the child does not work", rounds)
	}
}

// killChild runs one child on dir and kills it delay after it is ready
// (opened, with its records listed), or, with early, delay after it
// starts, which may be in the middle of Open. It returns what the child
// reported durable.
func killChild(t *testing.T, dir string, seed uint64, delay time.Duration, early bool) []killReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Helper$", "-test.count=1")
	cmd.Env = append(os.Environ(), killEnvDir+"="+dir, killEnvSeed+"="+strconv.FormatUint(seed, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		lines   []killReport
		bad     []string
		ready   = make(chan struct{})
		scanned = make(chan struct{})
	)
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if line == "ready" {
				close(ready)
			}
			if !strings.HasPrefix(line, "durable ") {
				continue // "ready", or the test framework's own output
			}
			rep, err := parseKillReport(line)
			if err != nil {
				bad = append(bad, err.Error())
				continue
			}
			lines = append(lines, rep)
		}
	}()
	// Kill once the delay has passed, counted from ready or from now. A
	// child that ends by itself ends the wait too.
	if !early {
		select {
		case <-ready:
		case <-scanned:
		case <-time.After(killChildLife):
		}
	}
	select {
	case <-time.After(delay):
		cmd.Process.Signal(syscall.SIGKILL)
	case <-scanned:
	}
	// The pipe is read to EOF before Wait, as os/exec requires; EOF comes
	// when the child dies, and the kernel delivers every line it wrote
	// before that.
	<-scanned
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child ended by itself before it was killed (%v):\n%s", err, stderr.String())
	}
	for _, b := range bad {
		t.Errorf("child printed a malformed line: %s", b)
	}
	return lines
}

func parseKillReport(line string) (killReport, error) {
	f := strings.Fields(line)
	var rep killReport
	if len(f) != 4 {
		return rep, fmt.Errorf("%q: want durable SEQ UUID OP", line)
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return rep, fmt.Errorf("%q: %v", line, err)
	}
	id, err := uuid.Parse(f[2])
	if err != nil {
		return rep, fmt.Errorf("%q: %v", line, err)
	}
	op, err := changeset.ParseOp(f[3])
	if err != nil {
		return rep, fmt.Errorf("%q: %v", line, err)
	}
	return killReport{seq, id, op}, nil
}

// checkAfterKill reopens the replica the child was killed on and checks it
// against everything reported durable so far (all), reading the records
// this round touched: those reported created in it (fresh) and those
// deleted by changesets after since, the log's end before the round. (Older
// records were read after earlier rounds; Verify checks that the records
// still match the log.) It returns the log's end.
func checkAfterKill(t *testing.T, dir string, all, fresh []killReport, since uint64) uint64 {
	t.Helper()
	r, err := replica.Open(dir, nil)
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer r.Close()
	latest := r.LatestSeq()

	// The log, read once: 1..LatestSeq with no gap, and the records each
	// changeset touches.
	touched := map[uint64]map[uuid.UUID]changeset.Op{}
	deleted := map[uuid.UUID]uint64{} // record -> the changeset deleting it
	it := r.Log(1)
	want := uint64(1)
	for it.Next() {
		if it.Seq() != want {
			t.Fatalf("log: sequence %d where %d belongs (a gap)", it.Seq(), want)
		}
		cs, err := it.Changeset()
		if err != nil {
			t.Fatalf("log entry %d: %v", it.Seq(), err)
		}
		m := map[uuid.UUID]changeset.Op{}
		for _, ch := range cs.Changes {
			m[ch.Record] = ch.Op
			if ch.Op == changeset.Delete {
				deleted[ch.Record] = it.Seq()
			}
		}
		touched[it.Seq()] = m
		want++
	}
	if err := it.Close(); err != nil {
		t.Fatalf("log scan: %v", err)
	}
	if want-1 != latest {
		t.Fatalf("log: %d entries, LatestSeq %d", want-1, latest)
	}

	for _, rep := range all {
		m, ok := touched[rep.seq]
		switch {
		case !ok:
			t.Errorf("changeset %d (%s of %s) was reported durable but is not in the log, which ends at %d", rep.seq, rep.op, rep.id, latest)
		case m[rep.id] != rep.op:
			t.Errorf("changeset %d: reported %s of %s, the log has %v", rep.seq, rep.op, rep.id, m)
		}
	}
	// A record reported created and deleted by no changeset in the log is
	// live. (A delete may be in the log unreported: the child was killed
	// between its Commit and its print.)
	for _, rep := range fresh {
		if _, gone := deleted[rep.id]; rep.op != changeset.Add || gone {
			continue
		}
		if _, err := r.Get(killType, rep.id); err != nil {
			t.Errorf("record %s, created durably at %d: %v", rep.id, rep.seq, err)
		}
	}
	for id, seq := range deleted {
		if seq <= since {
			continue
		}
		if _, err := r.Get(killType, id); !errors.Is(err, replica.ErrNotFound) {
			t.Errorf("record %s was deleted at %d, but Get says %v", id, seq, err)
		}
	}
	vr, err := r.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if len(vr.Problems) > 0 {
		t.Errorf("verify after kill -9 found problems:\n%s", strings.Join(vr.Problems, "\n"))
	}
	return latest
}

// TestKill9Helper is the child of TestKill9. Run any other way it does
// nothing.
func TestKill9Helper(t *testing.T) {
	dir := os.Getenv(killEnvDir)
	if dir == "" {
		return // not a child: TestKill9 runs it
	}
	seed, _ := strconv.ParseUint(os.Getenv(killEnvSeed), 10, 64)
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "kill9 child:", err)
		os.Exit(3)
	}
	r, err := replica.Open(dir, nil)
	if err != nil {
		fail(err)
	}
	// Each committer owns the live records whose UUID falls to it, so
	// that no two committers touch the same record and no commit conflicts.
	owned := make([][]uuid.UUID, killCommitters)
	err = r.List(killType, nil, func(rec *replica.Record) error {
		w := int(rec.UUID[0]) % killCommitters
		owned[w] = append(owned[w], rec.UUID)
		return nil
	})
	if err != nil {
		fail(err)
	}
	out := &killOut{w: os.Stdout}
	fmt.Println("ready")
	ctx, cancel := context.WithTimeout(context.Background(), killChildLife)
	defer cancel()
	var wg sync.WaitGroup
	for w := range killCommitters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &killCommitter{r: r, out: out, w: w, mine: owned[w], rng: rand.New(rand.NewPCG(seed, uint64(w)))}
			if err := c.run(ctx, w == 0); err != nil && ctx.Err() == nil {
				fail(err)
			}
		}()
	}
	wg.Wait()
	fail(errors.New("still alive after " + killChildLife.String() + "; was the parent killed?"))
}

// killOut prints the child's lines, one write each, so the kernel delivers
// every complete line written before the kill.
type killOut struct {
	mu sync.Mutex
	w  io.Writer
}

func (o *killOut) report(seq uint64, id uuid.UUID, op changeset.Op) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := fmt.Fprintf(o.w, "durable %d %s %s\n", seq, id, op); err != nil {
		os.Exit(4)
	}
}

// killCommitter is one of the child's goroutines.
type killCommitter struct {
	r    *replica.Replica
	out  *killOut
	w    int         // which committer: id[0] % committers == w for its records
	mine []uuid.UUID // live records only this committer touches
	rng  *rand.Rand
	n    int
}

func (c *killCommitter) props() map[string]string {
	c.n++
	return map[string]string{
		"summary": fmt.Sprintf("ticket %d: the export button does nothing", c.n),
		"status":  []string{"new", "open", "stalled", "resolved"}[c.rng.IntN(4)] + strconv.Itoa(c.n),
		"owner":   []string{"alice", "bob", "carol"}[c.rng.IntN(3)],
	}
}

// newID makes a UUID for a new record of c's.
func (c *killCommitter) newID() uuid.UUID {
	id := uuid.New()
	id[0] = byte(c.w) + byte(c.rng.IntN(256/killCommitters))*killCommitters
	return id
}

// run commits until ctx ends. The committer that bulk loads does so now and
// then; the others mix creates, updates, deletes and two-record commits.
func (c *killCommitter) run(ctx context.Context, bulk bool) error {
	for ctx.Err() == nil {
		switch p := c.rng.IntN(100); {
		case bulk && p < 10:
			if err := c.bulk(ctx); err != nil {
				return err
			}
		case len(c.mine) == 0 || p < 45:
			id := c.newID()
			if err := c.commit(ctx, replica.Edit{Type: killType, Record: id, Op: replica.Create, Set: c.props()}); err != nil {
				return err
			}
			c.mine = append(c.mine, id)
		case p < 75:
			id := c.mine[c.rng.IntN(len(c.mine))]
			if err := c.commit(ctx, replica.Edit{Type: killType, Record: id, Op: replica.Update, Set: map[string]string{"status": c.props()["status"]}}); err != nil {
				return err
			}
		case p < 90:
			i := c.rng.IntN(len(c.mine))
			id := c.mine[i]
			c.mine = append(c.mine[:i], c.mine[i+1:]...)
			if err := c.commit(ctx, replica.Edit{Type: killType, Record: id, Op: replica.Delete}); err != nil {
				return err
			}
		default: // one changeset, two records: both land or neither
			id, old := c.newID(), c.mine[c.rng.IntN(len(c.mine))]
			if err := c.commit(ctx,
				replica.Edit{Type: killType, Record: id, Op: replica.Create, Set: c.props()},
				replica.Edit{Type: killType, Record: old, Op: replica.Update, Set: map[string]string{"owner": c.props()["owner"] + "2"}},
			); err != nil {
				return err
			}
			c.mine = append(c.mine, id)
		}
	}
	return nil
}

// commit commits edits and reports each record of the changeset.
func (c *killCommitter) commit(ctx context.Context, edits ...replica.Edit) error {
	cs, err := c.r.Commit(ctx, edits...)
	if err != nil {
		return err
	}
	if cs == nil {
		return nil // the edits changed nothing
	}
	for _, ch := range cs.Changes {
		c.out.report(cs.Seq, ch.Record, ch.Op)
	}
	return nil
}

// bulk loads 10-200 new records, one changeset each. Concurrent commits
// wait while a bulk load runs, so its changesets hold consecutive
// sequence numbers ending at LastSeq.
func (c *killCommitter) bulk(ctx context.Context) error {
	ids := make([]uuid.UUID, 10+c.rng.IntN(191))
	for i := range ids {
		ids[i] = c.newID()
	}
	i := 0
	res, err := c.r.Bulk(ctx, func() (*replica.Unit, error) {
		if i == len(ids) {
			return nil, nil
		}
		i++
		return &replica.Unit{Edits: []replica.Edit{{Type: killType, Record: ids[i-1], Op: replica.Create, Set: c.props()}}}, nil
	})
	if err != nil {
		return err
	}
	if res.Changesets != len(ids) {
		return fmt.Errorf("bulk load of %d creates appended %d changesets", len(ids), res.Changesets)
	}
	first := res.LastSeq - uint64(len(ids)) + 1
	for i, id := range ids {
		c.out.report(first+uint64(i), id, changeset.Add)
	}
	c.mine = append(c.mine, ids...)
	return nil
}
