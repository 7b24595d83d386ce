package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"github.com/cockroachdb/pebble/v2/vfs"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/prophet-sync/prophet/merge/httpsync"
)

var tokenCmd = &command{
	name:    "token",
	args:    "add NAME --scope read|write | list | revoke NAME",
	summary: "make and revoke the bearer tokens prophet serve takes",
	detail: `
Tokens let other machines pull from, clone and push to this replica while
prophet serve serves it. Once the replica has a token, serve takes only
requests that carry one (PROPHET_TOKEN=TOKEN on the other machine); a read
token pulls and clones, a write token also pushes.

  token add NAME --scope read|write   make a token and print it, once
  token list                          one "NAME SCOPE CREATED" line per token
  token revoke NAME                   refuse that token from now on

The token is printed only by add: what is kept, in REPLICA/tokens.json
(mode 0600), is its SHA-256 hash, its name, scope and creation time. A
running serve reads the tokens again on SIGHUP (kill -HUP PID), so an added
or revoked token counts from then on; otherwise at its next start. A name is
letters, digits, ".", "_" and "-", starting with a letter or digit. With
--json, list writes the token shape of prophet --help, one per line.`,
	mode: openNothing,
	json: true,
	min:  1, max: 2,
	setup: func(fs *flag.FlagSet) runFunc {
		scope := fs.String("scope", "", "what the token allows: read (pull, clone) or write (also push); add only")
		return func(ctx context.Context, c *call) error {
			sub, rest := c.args[0], c.args[1:]
			want := map[string]int{"add": 1, "list": 0, "revoke": 1}
			n, ok := want[sub]
			if !ok || len(rest) != n {
				return usagef("token takes add NAME --scope read|write, list, or revoke NAME; run prophet token --help")
			}
			if c.json && sub != "list" {
				return usagef("token %s: --json goes with token list only", sub)
			}
			if *scope != "" && sub != "add" {
				return usagef("token %s: --scope goes with token add only", sub)
			}
			if _, err := os.Stat(filepath.Join(c.dir, "db")); err != nil {
				return userf(err, "no replica in %s; run prophet init to make one, or pass --replica DIR (or set PROPHET_REPLICA) to use another", c.dir)
			}
			if sub != "list" {
				// add and revoke read, change and write the file: one
				// at a time, or two at once could lose one's change.
				l, err := lockTokens(c.dir)
				if err != nil {
					return err
				}
				defer l.Close()
			}
			toks, err := readTokens(c.dir)
			if err != nil {
				return err
			}
			switch sub {
			case "list":
				for _, t := range toks {
					if c.json {
						if err := writeJSON(c.out, tokenListJSON{t.Name, t.Scope, t.Created}); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintf(c.out, "%s %s %s\n", t.Name, t.Scope, t.Created.Format(time.RFC3339))
				}
			case "add":
				name := rest[0]
				if err := checkTokenName(name); err != nil {
					return err
				}
				if *scope == "" {
					return usagef("token add %s needs --scope read (pull and clone) or --scope write (also push)", name)
				}
				if _, err := httpsync.ParseScope(*scope); err != nil {
					return usagef("--scope %q: give read (pull and clone) or write (also push)", *scope)
				}
				if slices.ContainsFunc(toks, func(t tokenJSON) bool { return t.Name == name }) {
					return userf(nil, "there is already a token named %s; revoke it first (prophet token revoke %s) or pick another name", name, name)
				}
				tok, err := httpsync.NewToken()
				if err != nil {
					return err
				}
				h := httpsync.HashToken(tok)
				created := time.Now().UTC().Truncate(time.Second)
				if !c.hooks.now.IsZero() {
					created = c.hooks.now.UTC()
				}
				toks = append(toks, tokenJSON{Name: name, Scope: *scope, Created: created, SHA256: hex.EncodeToString(h[:])})
				if err := writeTokens(c.dir, toks); err != nil {
					return err
				}
				fmt.Fprintf(c.out, "%s\n", tok)
				fmt.Fprintf(c.stderr, "added %s token %s; it is shown only now: keep it (set PROPHET_TOKEN to it where you pull or push)\n", *scope, name)
			case "revoke":
				name := rest[0]
				i := slices.IndexFunc(toks, func(t tokenJSON) bool { return t.Name == name })
				if i < 0 {
					return userf(nil, "no token named %s; %s", name, knownTokens(toks))
				}
				toks = slices.Delete(toks, i, i+1)
				if err := writeTokens(c.dir, toks); err != nil {
					return err
				}
				fmt.Fprintf(c.out, "revoked token %s\n", name)
			}
			return c.writeErr()
		}
	},
}

const tokensFile = "tokens.json"

// tokensFileJSON is REPLICA/tokens.json.
type tokensFileJSON struct {
	Tokens []tokenJSON `json:"tokens"`
}

// tokenJSON is one token as stored: never the token, only its hash.
type tokenJSON struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
	SHA256  string    `json:"sha256"`
}

// tokenListJSON is one line of token list --json (the token shape of
// prophet --help).
type tokenListJSON struct {
	Name    string    `json:"name"`
	Scope   string    `json:"scope"`
	Created time.Time `json:"created"`
}

func checkTokenName(name string) error {
	if !peerNameRE().MatchString(name) {
		return usagef("token name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters", name)
	}
	return nil
}

// readTokens reads the tokens of the replica in dir, by name (none if it
// has no tokens file).
func readTokens(dir string) ([]tokenJSON, error) {
	path := filepath.Join(dir, tokensFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var f tokensFileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, userf(err, "%s is not a tokens file (%v); fix it, or remove it and add the tokens again", path, err)
	}
	for _, t := range f.Tokens {
		h, err := hex.DecodeString(t.SHA256)
		if _, serr := httpsync.ParseScope(t.Scope); err != nil || len(h) != 32 || serr != nil {
			return nil, userf(nil, "%s: token %s has no valid sha256 or scope; fix it, or revoke it and add it again", path, t.Name)
		}
	}
	slices.SortFunc(f.Tokens, func(a, b tokenJSON) int { return strings.Compare(a.Name, b.Name) })
	return f.Tokens, nil
}

// tokenSet is the tokens of the replica in dir, for serve; nil if it has
// none.
func tokenSet(dir string) (*httpsync.TokenSet, error) {
	toks, err := readTokens(dir)
	if err != nil || len(toks) == 0 {
		return nil, err
	}
	hs := make([]httpsync.TokenHash, len(toks))
	for i, t := range toks {
		h, _ := hex.DecodeString(t.SHA256) // checked by readTokens
		copy(hs[i].Hash[:], h)
		hs[i].Scope, _ = httpsync.ParseScope(t.Scope)
	}
	return httpsync.NewTokenSet(hs), nil
}

// writeTokens replaces the tokens file atomically (mode 0600).
func writeTokens(dir string, toks []tokenJSON) error {
	if toks == nil {
		toks = []tokenJSON{}
	}
	b, err := json.MarshalIndent(tokensFileJSON{toks}, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSynced(dir, tokensFile, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the tokens file: %w", err)
	}
	return nil
}

// knownTokens says which tokens there are, for messages.
func knownTokens(toks []tokenJSON) string {
	if len(toks) == 0 {
		return "there are no tokens (add one with prophet token add NAME --scope read|write)"
	}
	names := make([]string, len(toks))
	for i, t := range toks {
		names[i] = t.Name
	}
	return "the tokens are " + strings.Join(names, ", ") + " (prophet token list)"
}

// lockTokens takes REPLICA/tokens.lock, waiting up to 5 s for another
// token add or revoke to finish.
func lockTokens(dir string) (io.Closer, error) {
	path := filepath.Join(dir, "tokens.lock")
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := vfs.Default.Lock(path)
		if err == nil {
			return l, nil
		}
		if time.Now().After(deadline) {
			return nil, userf(err, "another prophet token add or revoke holds %s; let it finish and run this again", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
