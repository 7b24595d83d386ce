package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prophet-sync/prophet/merge"
)

// The CLI on a served replica (DESIGN.md, "The CLI on a served replica").
// prophet serve holds its replica's lock, so another prophet command on the
// same replica could not open it. serve therefore also listens on a Unix
// socket that only its user may use (socketPath), and a command whose
// replica has a live socket sends its command line there: serve runs it,
// with the caller's directory, environment and creator, on the replica it
// holds open, and streams its output and exit code back. The caller prints
// them as if it had run the command itself.

// session is where a forwarded command runs.
type session struct {
	cwd       string            // the caller's working directory
	env       map[string]string // the caller's environment
	creator   string            // the caller's creator (PROPHET_EMAIL, git, user)
	shared    *merge.Local      // the replica serve holds
	sharedDir string            // its directory, absolute
}

// getenv is os.Getenv, or the caller's environment for a forwarded command.
func (c *call) getenv(key string) string {
	if c.sess != nil {
		return c.sess.env[key]
	}
	return os.Getenv(key)
}

// path makes p, as the caller typed it, usable here.
func (c *call) path(p string) string {
	if c.sess == nil || p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.sess.cwd, p)
}

// shared reports whether dir is the replica serve holds for this command.
func (c *call) shared(dir string) bool {
	return c.sess != nil && sameDir(c.path(dir), c.sess.sharedDir)
}

// socketPath is where the serve of the replica in dir listens for
// commands: dir/serve.sock, or, when that path is too long for a Unix
// socket, a name made from dir's absolute path in this user's own
// directory ($XDG_RUNTIME_DIR, else TMPDIR/prophet-UID, mode 0700). It is
// "" when there is no such directory that only this user can use.
func socketPath(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	p := filepath.Join(abs, "serve.sock")
	if len(p) < 100 {
		return p
	}
	own := os.Getenv("XDG_RUNTIME_DIR")
	if own == "" {
		own = filepath.Join(os.TempDir(), fmt.Sprintf("prophet-%d", os.Getuid()))
		os.Mkdir(own, 0o700)
	}
	if !ownPrivateDir(own) {
		return ""
	}
	h := sha256.Sum256([]byte(filepath.Clean(abs)))
	return filepath.Join(own, "prophet-"+hex.EncodeToString(h[:8])+".sock")
}

// ownPrivateDir reports whether dir is a directory of this user that no
// one else may enter.
func ownPrivateDir(dir string) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// ownSocket reports whether path is a socket of this user: a command goes
// only to a serve this user runs.
func ownSocket(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeSocket {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Getuid()
}

// forwardable commands open the replica in --replica; serve, bench, init,
// clone, watch, token and demo do not, or must not run inside serve.
func forwardable(cmd *command) bool {
	switch cmd.name {
	case "pull", "push", "conflicts", "peer":
		return true
	case "serve", "bench", "init", "clone", "watch", "token", "demo":
		return false
	}
	return cmd.mode != openNothing
}

// cliRequest is the first line of a forwarded command; the caller's stdin
// follows it in the request body.
type cliRequest struct {
	Args    []string `json:"args"`
	Cwd     string   `json:"cwd"`
	Env     []string `json:"env"`
	Creator string   `json:"creator"`
}

// cliFrame is one line of the answer: output, or the exit code last.
type cliFrame struct {
	Stdout string `json:"o,omitempty"`
	Stderr string `json:"e,omitempty"`
	Exit   *int   `json:"exit,omitempty"`
}

// served returns the command socket of the serve that holds the replica
// in dir, or "" if none answers (a socket left behind by a serve that died
// answers nothing: the lock is free).
func served(dir string) string {
	sock := socketPath(dir)
	if sock == "" || !ownSocket(sock) {
		return ""
	}
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return ""
	}
	conn.Close()
	return sock
}

// forwardTo is the socket of the serve that must run the command: the one
// holding its replica, or, for pull, push and clone, the one holding the
// other replica (a directory) it reads or writes.
func (c *call) forwardTo() string {
	if forwardable(c.cmd) {
		if sock := served(c.dir); sock != "" {
			return sock
		}
	}
	switch c.cmd.name {
	case "pull", "push":
		arg := ""
		if len(c.args) > 0 {
			arg = c.args[0]
		}
		if loc, err := c.locate(arg); err == nil && loc.dir != "" {
			return served(loc.dir)
		}
	case "clone":
		if len(c.args) > 0 && !isURL(c.args[0]) {
			return served(c.args[0])
		}
	}
	return ""
}

// forward runs the command in the serve that holds its replica (forwardTo),
// if one does: ok is false when none does.
func (c *call) forward(ctx context.Context, args []string) (code int, ok bool) {
	if c.sess != nil {
		return 0, false
	}
	sock := c.forwardTo()
	if sock == "" {
		return 0, false
	}
	cwd, err := os.Getwd()
	if err != nil {
		return report(c.stderr, err, c.dir), true
	}
	req := cliRequest{Args: args, Cwd: cwd, Env: os.Environ()}
	if c.cmd.mode == openWrite || c.cmd.name == "pull" || c.cmd.name == "import" {
		req.Creator = creator(ctx, os.Getenv)
	}
	head, err := json.Marshal(req)
	if err != nil {
		return report(c.stderr, err, c.dir), true
	}
	// Only import reads stdin.
	body := io.Reader(strings.NewReader(string(head) + "\n"))
	if c.cmd.name == "import" && c.stdin != nil {
		body = io.MultiReader(body, c.stdin)
	}
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://serve/cli", body)
	if err != nil {
		return report(c.stderr, err, c.dir), true
	}
	resp, err := client.Do(hreq)
	if err != nil {
		return report(c.stderr, fmt.Errorf("the prophet serve of %s (socket %s) did not take the command: %w", c.dir, sock, err), c.dir), true
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return report(c.stderr, fmt.Errorf("the prophet serve of %s refused the command: %s", c.dir, strings.TrimSpace(string(b))), c.dir), true
	}
	dec := json.NewDecoder(bufio.NewReader(resp.Body))
	for {
		var f cliFrame
		if err := dec.Decode(&f); err != nil {
			c.out.Flush()
			if ctx.Err() != nil {
				return exitError, true
			}
			return report(c.stderr, fmt.Errorf("the prophet serve of %s stopped answering before the command ended: %w; it may or may not have run (check with prophet --replica %s log)", c.dir, err, c.dir), c.dir), true
		}
		if f.Stdout != "" {
			c.out.WriteString(f.Stdout)
		}
		if f.Stderr != "" {
			c.out.Flush()
			io.WriteString(c.stderr, f.Stderr)
		}
		if f.Exit != nil {
			return *f.Exit, true
		}
	}
}

// cliServer is serve's side: it runs forwarded commands on l.
type cliServer struct {
	l   *merge.Local
	dir string // absolute
	log *slog.Logger
	wg  *sync.WaitGroup // serve waits for the commands under way before it closes l
}

func (s *cliServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/cli" {
		http.Error(w, "only POST /cli", http.StatusNotFound)
		return
	}
	s.wg.Add(1)
	defer s.wg.Done()
	br := bufio.NewReader(r.Body)
	line, err := br.ReadBytes('\n')
	var req cliRequest
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil || len(req.Args) == 0 || !filepath.IsAbs(req.Cwd) {
		http.Error(w, "a forwarded command starts with a JSON line {args, cwd, env, creator}", http.StatusBadRequest)
		return
	}
	env := map[string]string{}
	for _, kv := range req.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	sess := &session{cwd: req.Cwd, env: env, creator: req.Creator, shared: s.l, sharedDir: s.dir}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := &frameOut{w: w, rc: http.NewResponseController(w)}
	s.log.Info("running a command for another process", "args", strings.Join(req.Args, " "))
	code := runSession(r.Context(), req.Args, br, &streamWriter{fw, false}, &streamWriter{fw, true}, sess)
	fw.exit(code)
}

// runSession is Main for a forwarded command.
func runSession(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, sess *session) int {
	out := bufio.NewWriterSize(stdout, 32<<10)
	c, runFn, err := parse(args, out, func(k string) string { return sess.env[k] })
	if errors.Is(err, flag.ErrHelp) {
		out.Flush()
		return exitOK
	} else if err != nil {
		out.Flush()
		return report(stderr, err, "")
	}
	if !forwardable(c.cmd) && c.cmd.name != "clone" {
		return report(stderr, usagef("prophet %s does not run through a served replica's socket", c.cmd.name), "")
	}
	c.sess = sess
	c.dir = c.path(c.dir)
	if c.cmd.name == "import" {
		// Read the caller's stdin whole first: a bulk load holds serve's
		// committer, which must not wait on another process's pipe.
		f, err := os.CreateTemp("", "prophet-import-*")
		if err != nil {
			return report(stderr, err, c.dir)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if _, err := io.Copy(f, stdin); err != nil {
			return report(stderr, fmt.Errorf("reading the input to import: %w", err), c.dir)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return report(stderr, err, c.dir)
		}
		stdin = f
	}
	c.stdin, c.out, c.stderr = stdin, out, stderr
	code := exitOK
	if err := c.exec(ctx, runFn); err != nil {
		out.Flush()
		code = report(stderr, err, c.dir)
	}
	if err := out.Flush(); err != nil && code == exitOK {
		code = exitError
	}
	return code
}

// frameOut writes the answer's frames, one at a time.
type frameOut struct {
	mu sync.Mutex
	w  io.Writer
	rc *http.ResponseController
}

func (f *frameOut) write(fr cliFrame) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := json.Marshal(fr)
	if err != nil {
		return err
	}
	if _, err := f.w.Write(append(b, '\n')); err != nil {
		return err
	}
	return f.rc.Flush()
}

func (f *frameOut) exit(code int) { f.write(cliFrame{Exit: &code}) }

// streamWriter is the stdout or stderr of a forwarded command.
type streamWriter struct {
	f      *frameOut
	stderr bool
}

func (s *streamWriter) Write(p []byte) (int, error) {
	fr := cliFrame{Stdout: string(p)}
	if s.stderr {
		fr = cliFrame{Stderr: string(p)}
	}
	if err := s.f.write(fr); err != nil {
		return 0, err
	}
	return len(p), nil
}

// listenSocket listens on the replica's command socket, replacing one that
// a serve that died left behind, and never one that a live serve uses.
func listenSocket(dir string) (net.Listener, string, error) {
	sock := socketPath(dir)
	if sock == "" {
		return nil, sock, errors.New("the replica's path is too long for a socket in it, and this user has no private directory for one (set XDG_RUNTIME_DIR)")
	}
	if conn, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		conn.Close()
		return nil, sock, fmt.Errorf("another prophet serve answers on %s", sock)
	}
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return nil, sock, err
	}
	// For this user only; and every connection is checked besides.
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return nil, sock, err
	}
	return &ownerListener{ln}, sock, nil
}

// ownerListener takes only connections from processes of this user.
type ownerListener struct{ net.Listener }

func (l *ownerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if uc, ok := c.(*net.UnixConn); ok && peerIsMe(uc) {
			return c, nil
		}
		c.Close()
	}
}

// peerIsMe reports whether the process at the other end of c runs as this
// user (SO_PEERCRED).
func peerIsMe(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	return int(cred.Uid) == os.Getuid()
}
