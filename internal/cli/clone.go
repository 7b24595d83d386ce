package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
	"time"

	"github.com/prophet-sync/prophet/merge"
)

var cloneCmd = &command{
	name:    "clone",
	args:    "SOURCE DIR",
	summary: "make a new replica of the database SOURCE belongs to",
	detail: `
Creates a new replica in DIR (which must not exist, or be empty) of the same
database as SOURCE, a replica directory or the http:// or https:// URL of a
prophet serve, and copies everything SOURCE has: its changesets and its
resolution database. The new replica has its own replica UUID, and records
SOURCE, as an absolute path or the URL, as its peer named origin, so that
prophet pull and prophet push in DIR need no argument.
Prints how many changesets and records it copied. An interrupted clone is a
replica like any other: run prophet --replica DIR pull to finish it. With
--json, the clone shape of prophet --help.`,
	mode: openNothing,
	json: true,
	min:  2, max: 2,
	run: func(ctx context.Context, c *call) (err error) {
		source, dir := c.args[0], c.path(c.args[1])
		if !isURL(source) {
			source = c.path(source)
		}
		if err := checkEmptyDir(dir, "clone into"); err != nil {
			return err
		}
		if isURL(source) {
			return c.cloneHTTP(ctx, source, dir)
		}
		// Open for writing, the source can be copied whole (its commits
		// wait meanwhile), much faster than replaying its log; a source
		// this user may not write to is cloned by a pull.
		if c.shared(source) {
			return c.clone(ctx, c.sess.shared, c.args[0], absDir(source), dir)
		}
		so := c.opts
		src, err := merge.Open(ctx, source, &so)
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			so.ReadOnly = true
			src, err = merge.Open(ctx, source, &so)
		}
		if err != nil {
			return c.otherReplicaErr(err, source)
		}
		defer c.closeLocal(src, &err)

		return c.clone(ctx, src, c.args[0], absDir(source), dir)
	},
}

// clone clones src (named source on the command line, origin in the peers
// file) into dir and says what it did.
func (c *call) clone(ctx context.Context, src merge.Source, source, origin, dir string) (err error) {
	ropts := c.opts
	ropts.ReadOnly, ropts.Creator = false, c.creator(ctx)
	opts := c.mergeOptions()
	p := newProgress(c.stderr)
	opts.Progress = p.update
	start := time.Now()
	l, rep, err := merge.Clone(ctx, src, dir, &ropts, opts)
	p.done()
	if l == nil {
		return err
	}
	defer c.closeLocal(l, &err)
	perr := writePeers(dir, map[string]string{originPeer: origin})
	if err != nil {
		finish := fmt.Sprintf("prophet --replica %s pull", dir)
		if perr != nil {
			finish += " " + source
		}
		if errors.Is(err, context.Canceled) {
			return userf(err, "clone interrupted; %s holds what was copied so far: finish it with %s", dir, finish)
		}
		return userf(err, "clone stopped: %s; %s holds what was copied so far: finish it with %s", oneLine(describe(err, dir)), dir, finish)
	}
	if perr != nil {
		return userf(perr, "%v; the clone in %s is complete, only its peer origin is not recorded: add it with prophet --replica %s peer add origin %s", perr, dir, dir, source)
	}
	var records uint64
	for _, tc := range l.R.Counts() {
		records += tc.Count
	}
	took := time.Since(start)
	if c.json {
		return writeJSON(c.out, cloneJSON{Source: origin, Dir: absDir(dir), Replica: jsonUUID(l.R.UUID()),
			Database: jsonUUID(l.R.DatabaseUUID()), Changesets: rep.Integrated, Records: records,
			Resolutions: rep.Resolutions, Seconds: took.Seconds()})
	}
	fmt.Fprintf(c.out, "cloned %s (%s) from %s into %s in %s\n", count(uint64(rep.Integrated), "changeset"),
		count(records, "record"), source, dir, elapsed(took))
	return c.writeErr()
}

// checkEmptyDir refuses a directory that holds anything (or a file).
func checkEmptyDir(dir, verb string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return userf(err, "cannot %s %s: %v; give a new or empty directory", verb, dir, err)
	case len(entries) > 0:
		return userf(nil, "cannot %s %s: it is not empty; give a new or empty directory", verb, dir)
	}
	return nil
}
