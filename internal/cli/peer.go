package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

var peerCmd = &command{
	name:    "peer",
	args:    "add NAME LOCATION [--token-env VAR] | list | remove NAME",
	summary: "name the replicas you pull from and push to",
	detail: `
Peers are names for other replicas, so that "prophet pull NAME" and "prophet
push NAME" need no path. LOCATION is a replica directory (kept as an absolute
path), the http:// or https:// URL of a prophet serve, or a foreign replica
(rt:http://HOST/?queue=NAME). A name is letters, digits, ".", "_" and "-", starting with a letter or
digit; a peer name wins over a directory of the same name (write ./NAME for
the directory). pull and push without an argument use the peer named origin,
which clone records. The peers are kept in REPLICA/peers.json.

  peer add NAME LOCATION   name a replica
  peer list                one "NAME LOCATION" line per peer, by name
  peer remove NAME         forget a name (the replica is not touched)

A served replica that wants a token (prophet token) gets $PROPHET_TOKEN;
peer add NAME URL --token-env VAR makes pull and push with NAME send $VAR
instead (when it is set). Only the variable's name is kept, never a token;
list then shows "NAME URL token-env=VAR". With --json, list writes the peer
shape of prophet --help, one per line.`,
	mode: openRead,
	json: true,
	min:  1, max: 3,
	setup: func(fs *flag.FlagSet) runFunc {
		tokenEnv := fs.String("token-env", "", "add: the environment `VAR`iable holding the token to send to this served replica")
		return func(ctx context.Context, c *call) error { return c.peer(*tokenEnv) }
	},
}

var envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

func (c *call) peer(tokenEnv string) error {
	sub, rest := c.args[0], c.args[1:]
	want := map[string]int{"add": 2, "list": 0, "remove": 1}
	n, ok := want[sub]
	if !ok || len(rest) != n {
		return usagef("peer takes add NAME LOCATION, list, or remove NAME; run prophet peer --help")
	}
	if c.json && sub != "list" {
		return usagef("peer %s: --json goes with peer list only", sub)
	}
	if tokenEnv != "" && (sub != "add" || !isURL(rest[1])) {
		return usagef("--token-env goes with peer add NAME URL only (a served replica)")
	}
	if tokenEnv != "" && !envNameRE().MatchString(tokenEnv) {
		return usagef("--token-env %q: give the name of an environment variable (letters, digits, '_'), not a token", tokenEnv)
	}
	pf, err := readPeersFile(c.dir)
	if err != nil {
		return err
	}
	peers := pf.Peers
	switch sub {
	case "list":
		for _, name := range slices.Sorted(maps.Keys(peers)) {
			if c.json {
				if err := writeJSON(c.out, peerJSON{name, peers[name], pf.TokenEnv[name]}); err != nil {
					return err
				}
				continue
			}
			if v := pf.TokenEnv[name]; v != "" {
				fmt.Fprintf(c.out, "%s %s token-env=%s\n", name, peers[name], v)
				continue
			}
			fmt.Fprintf(c.out, "%s %s\n", name, peers[name])
		}
		return c.writeErr()
	case "add":
		name, loc := rest[0], rest[1]
		if err := checkPeerName(name); err != nil {
			return err
		}
		if old, ok := peers[name]; ok {
			return userf(nil, "peer %s is already %s; remove it first (prophet peer remove %s)", name, old, name)
		}
		if isForeign(loc) {
			canonical, err := foreignURL(loc)
			if err != nil {
				return err
			}
			loc = canonical
		} else if !isURL(loc) {
			loc = c.path(loc)
			if fi, err := os.Stat(loc); err != nil || !fi.IsDir() {
				return userf(err, "%s is not a directory; give the directory of a replica", loc)
			}
			if loc, err = filepath.Abs(loc); err != nil {
				return err
			}
			if sameDir(loc, c.dir) {
				return userf(nil, "%s is this replica; a peer is another replica", loc)
			}
		}
		peers[name] = loc
		if tokenEnv != "" {
			if pf.TokenEnv == nil {
				pf.TokenEnv = map[string]string{}
			}
			pf.TokenEnv[name] = tokenEnv
		}
		if err := writePeersFile(c.dir, pf); err != nil {
			return err
		}
		if tokenEnv != "" {
			fmt.Fprintf(c.out, "added peer %s: %s, sending $%s as its token\n", name, loc, tokenEnv)
		} else {
			fmt.Fprintf(c.out, "added peer %s: %s\n", name, loc)
		}
	case "remove":
		name := rest[0]
		loc, ok := peers[name]
		if !ok {
			return userf(nil, "no peer named %s; %s", name, knownPeers(peers))
		}
		delete(peers, name)
		delete(pf.TokenEnv, name)
		if err := writePeersFile(c.dir, pf); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "removed peer %s (%s)\n", name, loc)
	}
	return c.writeErr()
}

// originPeer is the peer clone records, and the one pull and push use
// without an argument.
const originPeer = "origin"

const peersFile = "peers.json"

var peerNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })

func checkPeerName(name string) error {
	if !peerNameRE().MatchString(name) {
		return usagef("peer name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 64 characters", name)
	}
	return nil
}

// peersFileJSON is REPLICA/peers.json.
type peersFileJSON struct {
	Peers map[string]string `json:"peers"`
	// TokenEnv names, for some served peers, the environment variable
	// holding the token to send them (never the token).
	TokenEnv map[string]string `json:"token_env,omitempty"`
}

// readPeers reads the peers of the replica in dir (none if it has no peers
// file).
func readPeers(dir string) (map[string]string, error) {
	f, err := readPeersFile(dir)
	return f.Peers, err
}

func readPeersFile(dir string) (peersFileJSON, error) {
	path := filepath.Join(dir, peersFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return peersFileJSON{Peers: map[string]string{}}, nil
	} else if err != nil {
		return peersFileJSON{}, err
	}
	var f peersFileJSON
	if err := json.Unmarshal(b, &f); err != nil {
		return peersFileJSON{}, userf(err, "%s is not a peers file (%v); fix it, or remove it and add the peers again", path, err)
	}
	if f.Peers == nil {
		f.Peers = map[string]string{}
	}
	return f, nil
}

// writePeers replaces the peers file atomically: a reader sees the old
// file or the new one, also after a crash.
func writePeers(dir string, peers map[string]string) error {
	return writePeersFile(dir, peersFileJSON{Peers: peers})
}

func writePeersFile(dir string, pf peersFileJSON) error {
	b, err := json.MarshalIndent(pf, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSynced(dir, peersFile, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the peers file: %w", err)
	}
	return nil
}

// writeFileSynced replaces dir/name atomically and durably: a temporary
// file written, synced and renamed over it, then dir synced. A reader sees
// the old file or the new one, also after a crash.
func writeFileSynced(dir, name string, b []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(dir, name+".*.tmp")
	if err != nil {
		return err
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(b)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	d, err := os.Open(dir)
	if err == nil {
		err = errors.Join(d.Sync(), d.Close())
	}
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// knownPeers says which peers there are, for messages.
func knownPeers(peers map[string]string) string {
	if len(peers) == 0 {
		return "there are no peers (add one with prophet peer add NAME LOCATION)"
	}
	return "the peers are " + strings.Join(slices.Sorted(maps.Keys(peers)), ", ") + " (prophet peer list)"
}
