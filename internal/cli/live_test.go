package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/internal/cli"
)

// lockedBuffer is an io.Writer that a test may read while a command writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// background runs prophet args until the test cancels it; stop returns its
// exit code.
func background(t *testing.T, out, errb *lockedBuffer, args ...string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- cli.Main(ctx, args, strings.NewReader(""), out, errb) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("prophet %s did not stop", strings.Join(args, " "))
			}
			if code != 0 {
				t.Errorf("prophet %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stop
}

// eventually waits for out to hold want; the deadline only keeps a broken
// test from hanging.
func eventually(t *testing.T, out *lockedBuffer, want, what string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in:\n%s", what, want, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// pull --live keeps a replica in step with a served one; watch prints what
// is committed there as it comes.
func TestPullLiveAndWatch(t *testing.T) {
	t.Setenv("PROPHET_EMAIL", "alice@example.com")
	t.Setenv("PROPHET_REPLICA", "")
	tmp := t.TempDir()
	a, b, c := filepath.Join(tmp, "a"), filepath.Join(tmp, "b"), filepath.Join(tmp, "c")
	addrFile := filepath.Join(tmp, "addr")
	prophet(t, "--replica", a, "init")
	prophet(t, "--replica", a, "create", "ticket", "title=before")
	var served lockedBuffer
	stopServe := background(t, &lockedBuffer{}, &served, "--replica", a, "serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile)
	var url string
	for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
		if bs, err := os.ReadFile(addrFile); err == nil && len(bs) > 0 {
			url = "http://" + strings.TrimSpace(string(bs))
		} else if time.Now().After(deadline) {
			t.Fatal("serve did not start")
		}
	}
	prophet(t, "clone", url, b)
	prophet(t, "clone", url, c)

	var live, watched lockedBuffer
	stopLive := background(t, &live, &lockedBuffer{}, "--replica", b, "pull", "--live", "--json", url)
	eventually(t, &served, "live: connected", "pull --live subscribing")
	stopWatch := background(t, &watched, &lockedBuffer{}, "--replica", c, "watch", "--json", "--type", "ticket", url)
	// Once both are subscribed, a change pushed to a reaches them. (The
	// first pull --live pull finds nothing new; it prints a JSON line.)
	eventually(t, &live, `"up_to_date":true`, "the first live pull")
	for deadline := time.Now().Add(20 * time.Second); strings.Count(served.String(), "live: connected") < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("watch did not subscribe:\n%s", served.String())
		}
	}
	prophet(t, "--replica", c, "create", "ticket", "title=pushed to a")
	prophet(t, "--replica", c, "create", "note", "text=not a ticket")
	prophet(t, "--replica", c, "push")
	eventually(t, &live, `"integrated":2`, "pull --live")
	eventually(t, &watched, `"new":"pushed to a"`, "watch")
	if stopLive() != 0 || stopWatch() != 0 {
		return
	}
	if strings.Contains(watched.String(), "not a ticket") || strings.Contains(watched.String(), `"new":"before"`) {
		t.Fatalf("watch --type ticket printed a note, or history without --history:\n%s", watched.String())
	}
	if out := prophet(t, "--replica", b, "list", "ticket"); !strings.Contains(out, `title="pushed to a"`) {
		t.Fatalf("b after pull --live:\n%s", out)
	}
	if stopServe() != 0 {
		return
	}
	prophet(t, "--replica", b, "verify")
}
