package cli_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prophet-sync/prophet/internal/cli"
	"github.com/prophet-sync/prophet/merge/httpsync"
)

func prophet(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Main(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
		t.Fatalf("prophet %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// dialStatus is the status Dial gets with token: 200, or the error's.
func dialStatus(t *testing.T, url, token string) int {
	t.Helper()
	_, err := httpsync.Dial(context.Background(), url, &httpsync.ClientOptions{Token: token, Attempts: 1})
	var he *httpsync.Error
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &he):
		return he.Status
	}
	t.Fatal(err)
	return 0
}

// waitStatus waits (5 s at most) for Dial with token to get want.
func waitStatus(t *testing.T, url, token string, want int, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := dialStatus(t, url, token)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d, want %d", what, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serve reads the tokens at start, and again on SIGHUP only.
func TestServeRereadsTokensOnSIGHUP(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no SIGHUP")
	}
	t.Setenv("PROPHET_EMAIL", "alice@example.com")
	t.Setenv("PROPHET_REPLICA", "")
	dir := filepath.Join(t.TempDir(), "a")
	addrFile := filepath.Join(t.TempDir(), "addr")
	prophet(t, "--replica", dir, "init")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--replica", dir, "serve", "--listen", "127.0.0.1:0", "--addr-file", addrFile}, strings.NewReader(""), io.Discard, io.Discard)
	}()
	var url string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			url = "http://" + strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hup := func() {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if got := dialStatus(t, url, ""); got != http.StatusOK {
		t.Fatalf("no tokens: %d", got)
	}
	w := prophet(t, "--replica", dir, "token", "add", "w", "--scope", "write")
	time.Sleep(100 * time.Millisecond)
	if got := dialStatus(t, url, ""); got != http.StatusOK {
		t.Fatalf("a token added, before SIGHUP: %d, want 200 (read at start only)", got)
	}
	hup()
	waitStatus(t, url, "", http.StatusUnauthorized, "no token after SIGHUP")
	if got := dialStatus(t, url, w); got != http.StatusOK {
		t.Fatalf("the new token after SIGHUP: %d", got)
	}
	r := prophet(t, "--replica", dir, "token", "add", "r", "--scope", "read")
	prophet(t, "--replica", dir, "token", "revoke", "w")
	hup()
	waitStatus(t, url, w, http.StatusUnauthorized, "a revoked token after SIGHUP")
	if got := dialStatus(t, url, r); got != http.StatusOK {
		t.Fatalf("the read token after SIGHUP: %d", got)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}
