package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// The script commands below reach the real RT 5 that .ci/rt up starts
// (PROPHET_RT_TEST_URL; user root, password password unless
// PROPHET_RT_TEST_USER / PROPHET_RT_TEST_PASSWORD say otherwise). Without
// it a script guarded by [!rt] skip skips, unless PROPHET_REQUIRE_RT is set
// (CI): then it fails.
//
//	rtqueue VAR             make a new RT queue, $VAR its name; sets $RT_URL,
//	                        $RT_USER and $RT_PASSWORD
//	rtticket QUEUE SUBJECT VAR   create a ticket in RT as its user, $VAR its ID
//	rtsubject ID WANT       require ticket ID's subject to be WANT
//	rtcount QUEUE N         require the queue to hold N tickets
//	holdproxy VAR URL       a proxy to RT that holds the answer to the first
//	                        ticket creation (see cmdHoldProxy)

func rtEnv(ts *testscript.TestScript) (url, user, pass string) {
	url = os.Getenv("PROPHET_RT_TEST_URL")
	if url == "" {
		ts.Fatalf("no RT server: guard the script with [!rt] skip")
	}
	user, pass = os.Getenv("PROPHET_RT_TEST_USER"), os.Getenv("PROPHET_RT_TEST_PASSWORD")
	if user == "" {
		user = "root"
	}
	if pass == "" {
		pass = "password"
	}
	return url, user, pass
}

// rtCondition is the script condition [rt]: an RT server to test with.
// Without one, under PROPHET_REQUIRE_RT, asking is an error.
func rtCondition() (bool, error) {
	if os.Getenv("PROPHET_RT_TEST_URL") != "" {
		return true, nil
	}
	if os.Getenv("PROPHET_REQUIRE_RT") != "" {
		return false, fmt.Errorf("PROPHET_REQUIRE_RT is set but PROPHET_RT_TEST_URL is not: start RT with .ci/rt up")
	}
	return false, nil
}

func rtDo(ts *testscript.TestScript, method, path string, body, out any) {
	url, user, pass := rtEnv(ts)
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		ts.Check(err)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, strings.TrimRight(url, "/")+"/REST/2.0"+path, rd)
	ts.Check(err)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	ts.Check(err)
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		ts.Fatalf("RT: %s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		ts.Check(json.NewDecoder(resp.Body).Decode(out))
	}
}

func cmdRTQueue(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: rtqueue VAR")
	}
	url, user, pass := rtEnv(ts)
	name := fmt.Sprintf("script-%d", time.Now().UnixNano())
	rtDo(ts, "POST", "/queue", map[string]any{"Name": name}, nil)
	ts.Setenv(args[0], name)
	ts.Setenv("RT_URL", url)
	ts.Setenv("RT_USER", user)
	ts.Setenv("RT_PASSWORD", pass)
}

func cmdRTTicket(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: rtticket QUEUE SUBJECT VAR")
	}
	var out struct {
		ID json.Number `json:"id"`
	}
	rtDo(ts, "POST", "/ticket", map[string]any{"Queue": args[0], "Subject": args[1]}, &out)
	ts.Setenv(args[2], out.ID.String())
}

func cmdRTSubject(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: rtsubject ID WANT")
	}
	var t struct {
		Subject string `json:"Subject"`
	}
	rtDo(ts, "GET", "/ticket/"+args[0], nil, &t)
	if (t.Subject == args[1]) == neg {
		ts.Fatalf("ticket %s has subject %q", args[0], t.Subject)
	}
}

// cmdHoldProxy: holdproxy VAR URL — a proxy to URL on loopback, $VAR its
// http:// URL. The first POST that makes a ticket (/REST/2.0/ticket) goes
// through to RT, and then its answer is held until the script ends, as for
// a process killed while it waits; the proxy writes "held" to proxy.log.
func cmdHoldProxy(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: holdproxy VAR URL")
	}
	target, err := url.Parse(args[1])
	ts.Check(err)
	rp := httputil.NewSingleHostReverseProxy(target)
	done := make(chan struct{})
	logPath := ts.MkAbs("proxy.log")
	var held atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/REST/2.0/ticket") && held.CompareAndSwap(false, true) {
			rec := httptest.NewRecorder()
			rp.ServeHTTP(rec, r) // RT makes the ticket
			os.WriteFile(logPath, []byte("held\n"), 0o644)
			select {
			case <-done:
			case <-r.Context().Done():
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	ts.Defer(func() { close(done); srv.Close() })
	ts.Setenv(args[0], srv.URL)
}

// cmdRTCount: rtcount QUEUE N — require the queue to hold N tickets.
func cmdRTCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: rtcount QUEUE N")
	}
	var pg struct {
		Total json.Number `json:"total"`
	}
	q := url.Values{"query": {"Queue = '" + args[0] + "'"}, "per_page": {"1"}}
	rtDo(ts, "GET", "/tickets?"+q.Encode(), nil, &pg)
	if pg.Total.String() != args[1] {
		ts.Fatalf("queue %s holds %s tickets, want %s", args[0], pg.Total, args[1])
	}
}
