package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/term"

	"github.com/prophet-sync/prophet/foreign"
	"github.com/prophet-sync/prophet/foreign/github"
	"github.com/prophet-sync/prophet/foreign/phabricator"
	"github.com/prophet-sync/prophet/foreign/rt"
	"github.com/prophet-sync/prophet/merge"
)

// foreignPrefixes are the address forms of the foreign replicas.
var foreignPrefixes = []string{"rt:", "github:", "phab:", "phabricator:"}

const foreignForms = "rt:http://HOST/?queue=NAME, github:OWNER/REPO or phab:https://HOST"

func isPhabricator(addr string) bool {
	return strings.HasPrefix(addr, "phab:") || strings.HasPrefix(addr, "phabricator:")
}

func isForeign(s string) bool {
	for _, p := range foreignPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// credentialsFile holds, per foreign address, the credentials that
// prophet foreign login stored: REPLICA/credentials.json, mode 0600. The
// environment's win over it.
const credentialsFile = "credentials.json"

type storedCredentials struct {
	User     string `json:"user"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
}

func readCredentials(dir string) (map[string]storedCredentials, error) {
	path := filepath.Join(dir, credentialsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]storedCredentials{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]storedCredentials{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, userf(nil, "%s is not a credentials file; remove it and run prophet foreign login again", path)
	}
	return m, nil
}

// gateway makes the gateway for a foreign address, with the credentials
// prophet foreign login kept for it, else the caller's environment's.
func (c *call) gateway(addr string) (foreign.Gateway, error) {
	canonical, err := foreignURL(addr)
	if err != nil {
		return nil, err
	}
	stored, err := readCredentials(c.dir)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(addr, "rt:"):
		// A login kept for this address wins: the environment's
		// credentials, meant for whatever RT, do not go to this one then.
		cred := rt.Credentials{User: c.getenv("PROPHET_RT_USER"), Password: c.getenv("PROPHET_RT_PASSWORD"), Token: c.getenv("PROPHET_RT_TOKEN")}
		if s, ok := stored[canonical]; ok {
			cred = rt.Credentials{User: s.User, Password: s.Password, Token: s.Token}
		}
		g, err := rt.New(rt.Config{Address: addr, Credentials: cred})
		if err != nil {
			return nil, userf(err, "%v", err)
		}
		return g, nil
	case strings.HasPrefix(addr, "github:"):
		token := c.getenv("PROPHET_GITHUB_TOKEN")
		if token == "" {
			token = c.getenv("GITHUB_TOKEN")
		}
		if s, ok := stored[canonical]; ok {
			token = s.Token
		}
		g, err := github.New(github.Config{Address: addr, Token: token})
		if err != nil {
			return nil, userf(err, "%v", err)
		}
		return g, nil
	case isPhabricator(addr):
		token := c.getenv("PROPHET_PHABRICATOR_TOKEN")
		if s, ok := stored[canonical]; ok {
			token = s.Token
		}
		g, err := phabricator.New(phabricator.Config{Address: addr, Token: token, Since: c.since})
		if err != nil {
			return nil, userf(err, "%v", err)
		}
		return g, nil
	}
	return nil, usagef("%s is not a foreign replica address (%s)", addr, foreignForms)
}

// foreignURL is the canonical address of a foreign replica (no
// credentials needed).
func foreignURL(addr string) (string, error) {
	switch {
	case strings.HasPrefix(addr, "rt:"):
		_, _, canonical, err := rt.ParseAddress(addr)
		if err != nil {
			return "", usagef("%v", err)
		}
		return canonical, nil
	case strings.HasPrefix(addr, "github:"):
		_, _, _, canonical, err := github.ParseAddress(addr)
		if err != nil {
			return "", usagef("%v", err)
		}
		return canonical, nil
	case isPhabricator(addr):
		canonical, _, _, err := phabricator.ParseAddress(addr)
		if err != nil {
			return "", usagef("%v", err)
		}
		return canonical, nil
	}
	return "", usagef("%s is not a foreign replica address (%s)", addr, foreignForms)
}

func (c *call) openForeign(here *merge.Local, addr string) (*foreign.Foreign, error) {
	gw, err := c.gateway(addr)
	if err != nil {
		return nil, err
	}
	f, err := foreign.Open(here, gw, nil)
	if errors.Is(err, foreign.ErrStateLocked) {
		return nil, userf(err, "%v", err)
	}
	return f, err
}

// parseSince reads how far back: 30d, 12w, or a Go duration (720h).
func parseSince(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 {
				return 0, errors.New("want a number of days (30d) or weeks (12w), or a duration (720h)")
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a number of days (30d) or weeks (12w), or a duration (720h)")
	}
	return d, nil
}

// syncForeign pulls from or pushes to a foreign replica.
func (c *call) syncForeign(ctx context.Context, f *syncFlags, push bool, here *merge.Local, addr string) error {
	if f.dryRun || f.force || f.live {
		return usagef("%s %s: --dry-run, --force and --live are for prophet replicas, not foreign ones", c.cmd.name, addr)
	}
	if f.since != "" {
		if !isPhabricator(addr) {
			return usagef("%s %s: --since is for Phabricator addresses (phab:https://HOST)", c.cmd.name, addr)
		}
		d, err := parseSince(f.since)
		if err != nil {
			return usagef("%s: --since %q: %v", c.cmd.name, f.since, err)
		}
		c.since = d
	}
	fr, err := c.openForeign(here, addr)
	if err != nil {
		return err
	}
	defer fr.Close()
	if push {
		if f.prefer != "" && c.cmd.name == "push" {
			return usagef("push %s: --prefer goes with pull (a push to a foreign replica settles nothing: pull first)", addr)
		}
		rep, err := fr.Push(ctx)
		if err != nil {
			return err
		}
		return c.writeForeignPush(rep, addr)
	}
	opts := c.mergeOptions()
	switch f.prefer {
	case "mine":
		opts.Resolver = merge.Mine
	case "theirs":
		opts.Resolver = merge.Theirs
	}
	rep, err := fr.Pull(ctx, opts)
	if err != nil {
		return c.explainMerge(err, rep, here, location{url: addr}, false, false)
	}
	return c.writeSyncReport(rep, location{url: addr}, addr, absDir(here.R.Dir()), false)
}

type foreignPushJSON struct {
	Target    string   `json:"target"`
	Read      int      `json:"read"`
	Owned     int      `json:"owned"`
	Queued    int      `json:"queued"`
	Completed int      `json:"completed"`
	Errored   int      `json:"errored"`
	Dropped   int      `json:"dropped"`
	Disabled  int      `json:"disabled"`
	Waiting   int      `json:"waiting"`
	Errors    []string `json:"errors,omitempty"`
	Wait      []string `json:"wait,omitempty"`
}

func (c *call) writeForeignPush(rep foreign.PushReport, addr string) error {
	j := foreignPushJSON{Target: addr, Read: rep.Read, Owned: rep.Owned, Queued: rep.Queued, Completed: rep.Completed,
		Errored: rep.Errored, Dropped: rep.Dropped, Disabled: rep.Disabled, Waiting: rep.Waiting}
	for _, e := range rep.Errors {
		j.Errors = append(j.Errors, e.Error())
	}
	for _, e := range rep.Wait {
		j.Wait = append(j.Wait, e.Error())
	}
	if c.json {
		if err := writeJSON(c.out, j); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.out, "pushed to %s: %d changes sent, %d failed, %d waiting (%d changesets read, %d of them from there)\n",
			addr, rep.Completed, rep.Errored, rep.Waiting, rep.Read, rep.Owned)
		if rep.Disabled > 0 {
			fmt.Fprintf(c.out, "%d changes not sent: their objects are no longer synced here (prophet foreign ops %s)\n", rep.Disabled, addr)
		}
		for _, e := range j.Errors {
			fmt.Fprintf(c.stderr, "  failed: %s\n", e)
		}
		for _, e := range j.Wait {
			fmt.Fprintf(c.stderr, "  waiting: %s\n", e)
		}
	}
	if rep.Errored > 0 {
		return userf(nil, "%d changes did not reach %s (above); the others did; see prophet foreign ops %s", rep.Errored, addr, addr)
	}
	if rep.Waiting > 0 {
		return userf(nil, "%d changes wait (above): they go out with the next push (or sync) once %s takes them; nothing was lost", rep.Waiting, addr)
	}
	return c.writeErr()
}

var foreignCmd = &command{
	name:    "foreign",
	args:    "list | ops ADDRESS [--record UUID] [--all] | retry ADDRESS [--record UUID] | login ADDRESS --user USER [--token] | logout ADDRESS",
	summary: "the foreign replicas this replica gateways to, and their sync operations",
	detail: `
Foreign replicas are trackers this replica pulls from and pushes to
(prophet pull rt:http://HOST/?queue=NAME, github:OWNER/REPO or
phab:https://HOST). Each has a state handle of its
own under REPLICA/foreign/UUID: the push position, the pull cursor, remote
ID <-> record maps, and the sync operations.

  foreign list          one line per foreign replica: its UUID, address,
                        pull cursor and push position
  foreign ops ADDRESS   the sync operations (the audit trail), oldest
                        first: ID, direction, state, record, version,
                        and why; --record ID keeps one record's; without
                        --all, completed inbound ones are left out
  foreign retry ADDRESS the errored outbound operations (of one record,
                        with --record) go back in the queue, for the next
                        prophet push ADDRESS: once what failed them is
                        fixed (a queue made, a right granted)

  foreign login ADDRESS --user USER
                        keep credentials for ADDRESS in this replica's
                        REPLICA/credentials.json (mode 0600): the password
                        (with --token, an auth token) is read from the
                        terminal without echo, or from stdin's first line
  foreign logout ADDRESS
                        forget them

Credentials come from foreign login, for the address it was given, else
from the environment: for RT, PROPHET_RT_USER with PROPHET_RT_PASSWORD or
PROPHET_RT_TOKEN; for GitHub (github:OWNER/REPO), PROPHET_GITHUB_TOKEN or
GITHUB_TOKEN; for Phabricator (phab:https://HOST), PROPHET_PHABRICATOR_TOKEN
(a Conduit API token; foreign login phab:https://HOST --token keeps one).
They are never printed, never
logged and never written to the replica's log.`,
	mode: openRead,
	json: true,
	min:  1, max: 2,
	setup: func(fs *flag.FlagSet) runFunc {
		rec := fs.String("record", "", "ops, retry: only those of this record (`UUID`)")
		all := fs.Bool("all", false, "ops: also the completed inbound ones")
		user := fs.String("user", "", "login: the remote `USER`")
		token := fs.Bool("token", false, "login: read an auth token rather than a password")
		return func(ctx context.Context, c *call) error {
			if len(c.args) > 0 && (c.args[0] == "login" || c.args[0] == "logout") {
				return c.foreignLogin(*user, *token)
			}
			return c.foreign(*rec, *all)
		}
	},
}

type foreignJSON struct {
	UUID         string `json:"uuid"`
	Address      string `json:"address"`
	Cursor       string `json:"cursor"`
	PushPosition uint64 `json:"push_position"`
}

type opJSON struct {
	ID       uint64    `json:"id"`
	Dir      string    `json:"direction"`
	State    string    `json:"state"`
	Type     string    `json:"type"`
	Record   string    `json:"record"`
	Remote   string    `json:"remote,omitempty"`
	Version  int64     `json:"version"`
	Props    []string  `json:"props,omitempty"`
	By       uint64    `json:"by,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Attempts int       `json:"attempts,omitempty"`
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
}

func (c *call) foreign(recArg string, all bool) error {
	dirs, err := filepath.Glob(filepath.Join(c.dir, "foreign", "*"))
	if err != nil {
		return err
	}
	switch c.args[0] {
	case "list":
		if len(c.args) != 1 {
			return usagef("foreign list takes no address")
		}
		for _, d := range dirs {
			st, err := foreign.OpenStateReadOnly(d)
			if err != nil {
				return userf(err, "%v", err)
			}
			j := foreignJSON{UUID: filepath.Base(d)}
			j.Address, err = st.Meta("url")
			if err == nil {
				j.Cursor, err = st.Cursor("feed")
			}
			if err == nil {
				j.PushPosition, err = st.PushPosition()
			}
			st.Close()
			if err != nil {
				return err
			}
			if c.json {
				if err := writeJSON(c.out, j); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(c.out, "%s %s pulled-to=%s pushed-to=%d\n", j.UUID, j.Address, orNone(j.Cursor), j.PushPosition)
		}
		return c.writeErr()
	case "ops", "retry":
		if len(c.args) != 2 {
			return usagef("foreign %s takes the foreign replica's ADDRESS", c.args[0])
		}
		canonical, err := foreignURL(c.args[1])
		if err != nil {
			return err
		}
		d := filepath.Join(c.dir, "foreign", foreign.NameUUID(canonical).String())
		if _, err := os.Stat(d); err != nil {
			return userf(nil, "this replica never synced with %s (no %s)", canonical, d)
		}
		open := foreign.OpenStateReadOnly
		if c.args[0] == "retry" {
			open = foreign.OpenState
		}
		st, err := open(d)
		if err != nil {
			return userf(err, "%v", err)
		}
		defer st.Close()
		var filter *foreign.Ref
		if recArg != "" {
			id, err := uuid.Parse(recArg)
			if err != nil {
				return usagef("--record %q: give the record's UUID", recArg)
			}
			filter = &foreign.Ref{Record: id}
		}
		if c.args[0] == "retry" {
			var rec *uuid.UUID
			if filter != nil {
				rec = &filter.Record
			}
			n, err := st.Requeue(rec, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.out, "%d errored operations queued again; prophet push %s runs them\n", n, c.args[1])
			return c.writeErr()
		}
		ops, err := st.Ops(nil)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if filter != nil && op.Ref.Record != filter.Record {
				continue
			}
			if !all && op.Dir == foreign.Inbound && op.State == foreign.Completed {
				continue
			}
			j := opJSON{ID: op.ID, Dir: op.Dir.String(), State: op.State.String(), Type: op.Ref.Type, Record: op.Ref.Record.String(),
				Remote: op.Remote, Version: op.Version, Props: op.Props, By: op.By, Reason: op.Reason, Attempts: op.Attempts,
				Created: op.Created.UTC(), Updated: op.Updated.UTC()}
			if c.json {
				if err := writeJSON(c.out, j); err != nil {
					return err
				}
				continue
			}
			line := fmt.Sprintf("%d %s %s %s %s v%d", j.ID, j.Dir, j.State, j.Type, j.Record, j.Version)
			if j.Remote != "" {
				line += " " + j.Remote
			}
			if j.By != 0 {
				line += fmt.Sprintf(" by=%d", j.By)
			}
			if j.Reason != "" {
				line += ": " + j.Reason
			}
			fmt.Fprintln(c.out, line)
		}
		return c.writeErr()
	}
	return usagef("foreign takes list or ops ADDRESS; run prophet foreign --help")
}

// foreignLogin stores (login) or forgets (logout) an address's
// credentials.
func (c *call) foreignLogin(user string, token bool) error {
	if len(c.args) != 2 {
		return usagef("foreign %s takes the foreign replica's ADDRESS", c.args[0])
	}
	canonical, err := foreignURL(c.args[1])
	if err != nil {
		return err
	}
	stored, err := readCredentials(c.dir)
	if err != nil {
		return err
	}
	if c.args[0] == "logout" {
		if _, ok := stored[canonical]; !ok {
			return userf(nil, "no credentials kept for %s", canonical)
		}
		delete(stored, canonical)
	} else {
		if isPhabricator(c.args[1]) {
			token = true // Conduit takes API tokens only
		}
		if user == "" && !isPhabricator(c.args[1]) {
			return usagef("foreign login needs --user USER")
		}
		what := "password"
		if token {
			what = "token"
		}
		secret, err := c.readSecret(fmt.Sprintf("%s for %s at %s: ", what, user, canonical))
		if err != nil {
			return err
		}
		if secret == "" {
			return usagef("foreign login: an empty %s", what)
		}
		s := storedCredentials{User: user, Password: secret}
		if token {
			s = storedCredentials{User: user, Token: secret}
		}
		stored[canonical] = s
	}
	b, err := json.MarshalIndent(stored, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSynced(c.dir, credentialsFile, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", credentialsFile, err)
	}
	if c.args[0] == "logout" {
		fmt.Fprintf(c.out, "forgot the credentials for %s\n", canonical)
	} else {
		who := "of " + user
		if user == "" {
			who = "(a token)"
		}
		fmt.Fprintf(c.out, "kept the credentials %s for %s in %s (mode 0600)\n", who, canonical, filepath.Join(c.dir, credentialsFile))
	}
	return c.writeErr()
}

// readSecret reads one line: from the terminal without echo, or stdin.
func (c *call) readSecret(prompt string) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(c.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return strings.TrimSpace(string(b)), err
	}
	line, err := bufio.NewReader(io.LimitReader(c.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func orNone(s string) string {
	if s == "" {
		return "never"
	}
	return s
}
