package cli

import (
	"context"
	"fmt"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// creator is who the changesets of this run are by: $PROPHET_EMAIL, else
// git config user.email, else the OS user name. git runs only when the
// variable is unset, and a missing git is no error.
func (c *call) creator(ctx context.Context) string {
	if c.sess != nil {
		return c.sess.creator
	}
	return creator(ctx, c.getenv)
}

func creator(ctx context.Context, getenv func(string) string) string {
	if v := getenv("PROPHET_EMAIL"); v != "" {
		return v
	}
	if out, err := exec.CommandContext(ctx, "git", "config", "user.email").Output(); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return v
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return getenv("USER")
}

// testHooks are TEST-ONLY switches, read from the environment by the CLI
// and nothing else, so that script tests can compare exact output. Nobody
// else should set them.
//
//	PROPHET_TEST_UUID_SEED=N  every new UUID (database, replica and record)
//	    is XXXXXXXX-YYYY-4000-8000-NNNNNNNNNNNN in hex: X is the replica's
//	    latest sequence number + 1 when this process opened it (0 for init),
//	    Y counts the UUIDs this process made (from 1), N is the seed. So the
//	    records of successive commands differ in their first 8 hex digits,
//	    and all of them share the prefix "0000".
//	PROPHET_TEST_NOW=TIME     the clock stands still at TIME (RFC 3339).
type testHooks struct {
	seed  uint64
	uuids bool
	now   time.Time
	base  atomic.Uint64
	n     atomic.Uint64
}

// testHooksEnabled is set only in test binaries (export_test.go): the
// prophet binary ignores the variables, so a leaked one can never make two
// real replicas share UUIDs.
var testHooksEnabled bool

func loadTestHooks(getenv func(string) string) (*testHooks, error) {
	h := &testHooks{}
	if !testHooksEnabled {
		return h, nil
	}
	if v := getenv("PROPHET_TEST_UUID_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 48)
		if err != nil {
			return nil, fmt.Errorf("PROPHET_TEST_UUID_SEED=%q is not a number below 2^48; unset it (it is for tests only)", v)
		}
		h.seed, h.uuids = seed, true
	}
	if v := getenv("PROPHET_TEST_NOW"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("PROPHET_TEST_NOW=%q is not an RFC 3339 time; unset it (it is for tests only)", v)
		}
		h.now = t
	}
	return h, nil
}

// apply puts the hooks that are set into opts.
func (h *testHooks) apply(opts *replica.Options) {
	if h.uuids {
		opts.NewUUID = h.newUUID
	}
	if !h.now.IsZero() {
		opts.Clock = func() time.Time { return h.now }
	}
}

// opened is told the replica once it is open, before anything commits.
func (h *testHooks) opened(r *replica.Replica) { h.base.Store(r.LatestSeq() + 1) }

// newUUID is called from the replica's committer goroutine, hence atomics.
func (h *testHooks) newUUID() uuid.UUID {
	s := fmt.Sprintf("%08x-%04x-4000-8000-%012x", uint32(h.base.Load()), uint16(h.n.Add(1)), h.seed)
	return uuid.MustParse(s)
}

// derive returns the hooks for another replica made by this process (the
// demo's): the same clock, the seed plus n, so that its UUIDs differ.
func (h *testHooks) derive(n uint64) *testHooks {
	return &testHooks{seed: (h.seed + n) & (1<<48 - 1), uuids: h.uuids, now: h.now}
}
