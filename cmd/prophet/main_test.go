package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary builds the real prophet binary once and checks what only the
// binary has: its exit codes through os.Exit, and its signal handling.
// (The commands themselves are covered by internal/cli's scripts.)
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "prophet")
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to build with: %v", err)
	}
	if out, err := exec.Command(gotool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(stdin string, args ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PROPHET_REPLICA=", "PROPHET_EMAIL=test@example.com")
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), o.String(), e.String()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, o.String(), e.String()
	}

	t.Run("help", func(t *testing.T) {
		code, out, errOut := run("", "--help")
		if code != 0 || !strings.Contains(out, "usage: prophet") || errOut != "" {
			t.Errorf("prophet --help: exit %d, stdout %q, stderr %q; want 0, the usage, nothing", code, out, errOut)
		}
	})
	t.Run("bogus", func(t *testing.T) {
		code, out, errOut := run("", "bogus")
		want := "prophet: unknown command \"bogus\"; run prophet --help to see the commands\n"
		if code != 2 || out != "" || errOut != want {
			t.Errorf("prophet bogus: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, out, errOut, want)
		}
	})
	t.Run("error", func(t *testing.T) {
		code, _, errOut := run("", "info")
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "run prophet init") {
			t.Errorf("prophet info without a replica: exit %d, stderr %q; want 1 and one line saying to run prophet init", code, errOut)
		}
	})
	t.Run("interrupt", func(t *testing.T) {
		if code, _, errOut := run("", "init"); code != 0 {
			t.Fatalf("init: exit %d: %s", code, errOut)
		}
		// An import waiting on a stdin that never ends stops on SIGINT,
		// keeping the lines it had read.
		cmd := exec.Command(bin, "import", "-")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PROPHET_REPLICA=", "PROPHET_EMAIL=test@example.com")
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Write([]byte(`{"type":"task","props":{"title":"kept"}}` + "\n"))
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Fatal("prophet import did not stop on SIGINT")
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(errOut.String(), "prophet: import interrupted") {
			t.Fatalf("after SIGINT: %v, stderr %q; want exit 1 and prophet: import interrupted …", err, errOut.String())
		}
		// What the message says is committed is what is there. (On a
		// loaded machine the signal may come before the line was read.)
		read := strings.Contains(errOut.String(), "lines 1-1 are committed")
		if !read && !strings.Contains(errOut.String(), "before it read a line") {
			t.Fatalf("after SIGINT: stderr %q says neither that line 1 is committed nor that none is", errOut.String())
		}
		code, out, _ := run("", "list", "task")
		if code != 0 || strings.Contains(out, "title=kept") != read {
			t.Errorf("after the interrupted import (line 1 committed: %v), list task: exit %d, %q", read, code, out)
		}
	})
}
