package merge_test

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/merge"
	"github.com/prophet-sync/prophet/replica"
)

// TestPullKill9 kills a pull with SIGKILL at random moments and checks that
// running it again ends exactly where one clean pull ends: no changeset
// lost, none integrated twice, every conflict settled once.
//
// The destination has edited records that the source edited too, so the
// pull settles conflicts (--prefer theirs) as well as integrating plain
// changesets. A reference copy of the destination takes one clean pull
// first. Then a child process (this test binary, TestPullKill9Helper) pulls
// into the destination and is killed 0-250 ms after it starts, round after
// round; after each kill the destination must pass verify and hold no
// changeset twice. Finally the parent finishes the pull, and the
// destination must equal the reference: same records (digest), same
// changesets from elsewhere, same tickets, and as many nullifications and
// resolutions (so none was written twice).
const (
	killEnvSrc = "PROPHET_PULLKILL_SRC"
	killEnvDst = "PROPHET_PULLKILL_DST"
)

func TestPullKill9Helper(t *testing.T) {
	src, dst := os.Getenv(killEnvSrc), os.Getenv(killEnvDst)
	if src == "" {
		t.Skip("the child of TestPullKill9; not a test on its own")
	}
	s, err := merge.Open(ctx, src, &replica.Options{ReadOnly: true, LockWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Small batches: more moments at which a kill leaves part of the
	// pull durable.
	d, err := merge.Open(ctx, dst, &replica.Options{LockWait: 5 * time.Second, MaxGroupChangesets: 64})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("pulling")
	if _, err := merge.Pull(ctx, s, d, &merge.Options{Resolver: merge.Theirs}); err != nil {
		t.Fatal(err)
	}
	d.Close()
	s.Close()
}

func TestPullKill9(t *testing.T) {
	if os.Getenv(killEnvSrc) != "" {
		t.Skip("in the child")
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("PROPHET_PULLKILL_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	defer func() {
		if t.Failed() {
			t.Logf("seed %d (rerun with PROPHET_PULLKILL_SEED=%d)", seed, seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 7))
	base := t.TempDir()
	srcDir, dstDir, refDir := filepath.Join(base, "src"), filepath.Join(base, "dst"), filepath.Join(base, "ref")

	// The source: 2000 records; the destination pulls them, then both
	// edit: the source 4000 updates, the destination 300 updates of the
	// same records (conflicts) and 200 creates of its own.
	const records = 2000
	s := newLocalAt(t, srcDir, uuid.Nil)
	ids := make([]uuid.UUID, records)
	i := 0
	if _, err := s.R.Bulk(ctx, func() (*replica.Unit, error) {
		if i == records {
			return nil, nil
		}
		i++
		return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Op: replica.Create, Record: uuid.New(), Set: map[string]string{"status": "new", "n": strconv.Itoa(i)}}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	it := 0
	s.R.List("bug", nil, func(rec *replica.Record) error { ids[it] = rec.UUID; it++; return nil })
	d := newLocalAt(t, dstDir, s.R.DatabaseUUID())
	pull(t, d, s, nil)
	k := 0
	if _, err := s.R.Bulk(ctx, func() (*replica.Unit, error) {
		if k == 2*records {
			return nil, nil
		}
		k++
		return &replica.Unit{Edits: []replica.Edit{{Type: "bug", Op: replica.Update, Record: ids[rng.IntN(records)], Set: map[string]string{"status": "src-" + strconv.Itoa(k)}}}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	for j := range 300 {
		if _, err := d.R.Commit(ctx, replica.Edit{Type: "bug", Op: replica.Update, Record: ids[rng.IntN(records)], Set: map[string]string{"status": "dst-" + strconv.Itoa(j)}}); err != nil {
			t.Fatal(err)
		}
	}
	for j := range 200 {
		if _, err := d.R.Commit(ctx, replica.Edit{Type: "task", Op: replica.Create, Set: map[string]string{"n": strconv.Itoa(j)}}); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()

	// The reference: a copy of the destination, pulled cleanly once.
	if err := os.CopyFS(refDir, os.DirFS(dstDir)); err != nil {
		t.Fatal(err)
	}
	ref, err := merge.Open(ctx, refDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	refRep := pull(t, ref, s, &merge.Options{Resolver: merge.Theirs})
	if refRep.Conflicts == 0 {
		t.Fatal("the reference pull settled no conflict: the test proves less than it claims")
	}
	want := summarize(t, ref)
	wantTicket := ref.R.Ticket(s.R.UUID())
	ref.Close()
	s.Close()

	// Kill the child again and again.
	kills, partial := 0, 0
	last := uint64(0)
	for round := 0; round < 12; round++ {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPullKill9Helper$", "-test.v")
		cmd.Env = append(os.Environ(), killEnvSrc+"="+srcDir, killEnvDst+"="+dstDir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Most rounds kill the pull while it runs; one in four at any
		// moment from the start, open and recovery included.
		started := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			once := false
			for sc.Scan() {
				if sc.Text() == "pulling" && !once {
					once = true
					close(started)
				}
			}
			if !once {
				close(started)
			}
		}()
		if rng.IntN(4) != 0 {
			<-started
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: the child failed before it was killed: %v", round, err)
			}
		case <-time.After(time.Duration(rng.IntN(150)) * time.Millisecond):
			cmd.Process.Kill()
			<-done
			kills++
		}
		d, err := merge.Open(ctx, dstDir, nil)
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		if v, err := d.R.Verify(ctx); err != nil || !v.OK() {
			t.Fatalf("round %d: verify after the kill: %v %v", round, v.Problems, err)
		}
		summarize(t, d) // fails on a changeset held twice
		if seq := d.R.LatestSeq(); seq > last && d.R.Ticket(s.R.UUID()) < wantTicket {
			partial++ // killed with part of the pull done
		}
		last = d.R.LatestSeq()
		d.Close()
	}
	if partial == 0 {
		t.Fatalf("no child was killed with part of the pull done (%d kills): the test proves nothing", kills)
	}

	// Finish, and compare with the clean pull.
	s, err = merge.Open(ctx, srcDir, &replica.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err = merge.Open(ctx, dstDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pull(t, d, s, &merge.Options{Resolver: merge.Theirs})
	if got := summarize(t, d); got != want {
		t.Fatalf("after %d kills and a final pull:\n got %s\nwant %s (one clean pull)", kills, got, want)
	}
	t.Logf("%d of 12 pulls killed, %d with part of the pull done; the result equals one clean pull (%d conflicts settled)", kills, partial, refRep.Conflicts)
}

// summarize describes what a pull must reproduce exactly: the records, the
// changesets from elsewhere, the tickets, and how many local
// nullifications and resolutions there are. It fails the test if a
// changeset is in the log twice.
func summarize(t *testing.T, l *merge.Local) string {
	t.Helper()
	var foreign []string
	seen := map[string]bool{}
	nulls, res := 0, 0
	it := l.R.Log(1)
	defer it.Close()
	for it.Next() {
		cs, err := it.Changeset()
		if err != nil {
			t.Fatal(err)
		}
		id := cs.ID().String()
		if seen[id] {
			t.Fatalf("changeset %s is in the log twice", id)
		}
		seen[id] = true
		switch {
		case cs.Origin != l.R.UUID():
			foreign = append(foreign, id)
		case cs.IsNullification:
			nulls++
		case cs.IsResolution:
			res++
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(foreign)
	tickets := l.R.Tickets()
	delete(tickets, l.R.UUID())
	sum := sha256.Sum256([]byte(strings.Join(foreign, "\n")))
	return fmt.Sprintf("digest %s, %d changesets from elsewhere (ids %x), tickets %v, %d nullifications, %d resolutions",
		l.R.Digest(), len(foreign), sum[:8], tickets, nulls, res)
}
