package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/prophet-sync/prophet/internal/cli"
	"github.com/prophet-sync/prophet/replica"
)

// TestMain makes the test binary double as the prophet command: scripts run
// "prophet ..." as a child process of this binary, which calls cli.Main.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"prophet": func() {
			// As cmd/prophet: SIGINT and SIGTERM cancel the context.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScripts runs testdata/script/*.txtar. Besides the standard commands
// they have:
//
//	exits CODE prog args...  run prog and require exit code CODE
//	hold DIR                 open the replica DIR in the test process
//	release DIR              close it again
//	damage DIR               delete one record key behind the replica's back
//	samedigest DIR DIR...    require equal state digests (! samedigest A B: different)
//	waitaddr FILE VAR [SCHEME]  wait (10 s at most) for prophet serve --addr-file FILE,
//	                         and set $VAR to SCHEME://ADDRESS (default http)
//	cutproxy VAR URL BYTES   proxy URL on loopback, $VAR its http:// URL; the first
//	                         connection whose answers pass BYTES bytes is cut there
//	                         (once), and the proxy writes "cut" into proxy.log
//	waitmatch FILE REGEXP    wait (20 s at most) for FILE to hold a line matching REGEXP
//	genrecords FILE N        write N records of type ticket as import lines
//	gencert DIR              write a self-signed certificate for 127.0.0.1 and
//	                         localhost, DIR/cert.pem, and its key, DIR/key.pem
//	envfile VAR FILE         set $VAR to FILE's content, trimmed
//	filemode FILE PERM       require FILE's permission bits to be PERM (octal)
//
// Every script starts with the test-only hooks set (PROPHET_TEST_UUID_SEED,
// PROPHET_TEST_NOW, see internal/cli/env.go) and PROPHET_EMAIL, so that
// output is exact.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                filepath.Join("testdata", "script"),
		RequireUniqueNames: true,
		UpdateScripts:      os.Getenv("UPDATE_SCRIPTS") != "",
		Setup:              setup,
		Condition: func(cond string) (bool, error) {
			if cond == "rt" {
				return rtCondition()
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits":         cmdExits,
			"hold":          cmdHold,
			"release":       cmdRelease,
			"damage":        cmdDamage,
			"samedigest":    cmdSameDigest,
			"waitaddr":      cmdWaitAddr,
			"envfile":       cmdEnvFile,
			"filemode":      cmdFileMode,
			"gencert":       cmdGenCert,
			"genrecords":    cmdGenRecords,
			"waitmatch":     cmdWaitMatch,
			"cutproxy":      cmdCutProxy,
			"rtqueue":       cmdRTQueue,
			"rtticket":      cmdRTTicket,
			"rtsubject":     cmdRTSubject,
			"rtcount":       cmdRTCount,
			"holdproxy":     cmdHoldProxy,
			"githubfake":    cmdGitHubFake,
			"githubexhaust": cmdGitHubExhaust,
			"phabfake":      cmdPhabFake,
			"phabold":       cmdPhabOld,
		},
	})
}

type holdsKey struct{}

func setup(e *testscript.Env) error {
	e.Setenv("PROPHET_EMAIL", "alice@example.com")
	e.Setenv("PROPHET_TEST_UUID_SEED", "1")
	e.Setenv("PROPHET_TEST_NOW", "2024-01-02T03:04:05.5Z")
	e.Setenv("PROPHET_REPLICA", "")
	if os.Getenv("GORACE") == "" {
		// A race-enabled child otherwise sleeps 1 s on exit.
		e.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	// $PROPHETBIN is where testscript put the prophet command, for scripts
	// that set PATH to something narrow.
	for _, dir := range filepath.SplitList(e.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, "prophet")); err == nil {
			e.Setenv("PROPHETBIN", dir)
			break
		}
	}
	holds := map[string]*replica.Replica{}
	e.Values[holdsKey{}] = holds
	e.Values[githubKey{}] = &githubHolder{}
	e.Values[phabKey{}] = &phabHolder{}
	e.Defer(func() {
		for _, r := range holds {
			r.Close()
		}
	})
	return nil
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE prog args...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("%s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
	}
}

func cmdHold(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: hold DIR")
	}
	r, err := replica.Open(ts.MkAbs(args[0]), nil)
	ts.Check(err)
	ts.Value(holdsKey{}).(map[string]*replica.Replica)[args[0]] = r
}

func cmdRelease(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: release DIR")
	}
	holds := ts.Value(holdsKey{}).(map[string]*replica.Replica)
	r := holds[args[0]]
	if r == nil {
		ts.Fatalf("%s is not held", args[0])
	}
	delete(holds, args[0])
	ts.Check(r.Close())
}

// cmdDamage deletes the first record-state key ('R', DESIGN.md "Key
// layout") straight from the Pebble DB, so that verify has something to
// find.
func cmdDamage(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: damage DIR")
	}
	db, err := pebble.Open(filepath.Join(ts.MkAbs(args[0]), "db"), &pebble.Options{ErrorIfNotExists: true, Logger: quiet{}})
	ts.Check(err)
	defer db.Close()
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte("R"), UpperBound: []byte("S")})
	ts.Check(err)
	if !it.First() {
		it.Close()
		ts.Fatalf("no record key in %s", args[0])
	}
	key := append([]byte(nil), it.Key()...)
	ts.Check(it.Close())
	ts.Check(db.Delete(key, pebble.Sync))
}

// cmdSameDigest opens each replica read-only and compares state digests.
func cmdSameDigest(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 || neg && len(args) != 2 {
		ts.Fatalf("usage: samedigest DIR DIR... (negated: exactly two)")
	}
	digests := make([]replica.Digest, len(args))
	for i, dir := range args {
		r, err := replica.Open(ts.MkAbs(dir), &replica.Options{ReadOnly: true})
		ts.Check(err)
		digests[i] = r.Digest()
		ts.Check(r.Close())
	}
	for i, d := range digests[1:] {
		if same := d == digests[0]; same == neg {
			ts.Fatalf("digest of %s is %s, of %s %s", args[0], digests[0], args[i+1], d)
		}
	}
}

func cmdWaitAddr(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: waitaddr FILE VAR [SCHEME]")
	}
	scheme := "http"
	if len(args) == 3 {
		scheme = args[2]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		if err == nil && len(b) > 0 {
			ts.Setenv(args[1], scheme+"://"+strings.TrimSpace(string(b)))
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no address in %s after 10s: %v", args[0], err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cmdEnvFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: envfile VAR FILE")
	}
	b, err := os.ReadFile(ts.MkAbs(args[1]))
	ts.Check(err)
	ts.Setenv(args[0], strings.TrimSpace(string(b)))
}

func cmdFileMode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); got != os.FileMode(want) {
		ts.Fatalf("%s has mode %#o, want %#o", args[0], got, want)
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)              {}
func (quiet) Errorf(string, ...any)             {}
func (quiet) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func cmdGenCert(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: gencert DIR")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ts.Check(err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "prophet test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	ts.Check(err)
	kb, err := x509.MarshalECPrivateKey(key)
	ts.Check(err)
	dir := ts.MkAbs(args[0])
	ts.Check(os.MkdirAll(dir, 0o755))
	ts.Check(os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	ts.Check(os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
}

func cmdGenRecords(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: genrecords FILE N")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	var b strings.Builder
	for i := range n {
		pad := sha256.Sum256(fmt.Appendf(nil, "%d", i)) // incompressible, as real text is not quite
		fmt.Fprintf(&b, `{"type":"ticket","props":{"title":"generated %d","pad":"%x"}}`+"\n", i, pad)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), []byte(b.String()), 0o644))
}

func cmdWaitMatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: waitmatch FILE REGEXP")
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(ts.MkAbs(args[0]))
		if re.Match(b) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no line matching %q in %s after 20s:\n%s", args[1], args[0], b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func cmdCutProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: cutproxy VAR URL BYTES")
	}
	limit, err := strconv.ParseInt(args[2], 10, 64)
	ts.Check(err)
	target := strings.TrimPrefix(args[1], "http://")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ts.Defer(func() { ln.Close() })
	logPath := ts.MkAbs("proxy.log")
	var cut atomic.Bool
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				defer s.Close()
				if cut.Load() {
					io.Copy(c, s)
					return
				}
				n, _ := io.CopyN(c, s, limit)
				if n == limit && cut.CompareAndSwap(false, true) {
					os.WriteFile(logPath, []byte("cut\n"), 0o644)
					return // both ends closed mid-answer
				}
				io.Copy(c, s)
			}()
		}
	}()
	ts.Setenv(args[0], "http://"+ln.Addr().String())
}
