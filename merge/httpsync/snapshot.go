package httpsync

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// A snapshot is the served replica's whole database (replica.Snapshot: a
// Pebble checkpoint taken while its commits wait), sent as a tar of its
// files, flat, then a last member snapshotEnd: JSON {"sent": N, "files":
// [every file of the snapshot]}, so a stream cut at a member boundary is
// still caught. ?have=NAME,NAME names table files (*.sst) the client holds
// from an earlier, cut snapshot of the same replica: they are not sent
// again. A table file's name is never reused in a database, and a file
// never changes once written, so the one the client holds is the one the
// new snapshot has: a clone cut mid-way resumes where it was, file by file. The
// headers name the replica, its database and the last sequence number the
// snapshot holds. A clone made from it is the same as one made by copying
// the replica on its own machine (merge.Clone), and much faster than
// integrating the log changeset by changeset.
const (
	snapshotEnd       = "PROPHET-SNAPSHOT-END"
	headerReplica     = "X-Prophet-Replica"
	headerDatabase    = "X-Prophet-Database"
	headerLatest      = "X-Prophet-Latest"
	maxSnapshotMember = 1 << 40
)

// snapshot serves GET /v1/snapshot.
func (h *Handler) snapshot(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var err error
	defer func() { h.m.observe("clone", start, err) }()
	tmp, err := os.MkdirTemp(h.o.SpoolDir, "prophet-snapshot-*")
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "db")
	info, err := h.l.R.Snapshot(r.Context(), dir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		h.fail(w, r, http.StatusInternalServerError, "internal", err)
		return
	}
	have := map[string]bool{}
	for _, name := range strings.Split(r.URL.Query().Get("have"), ",") {
		if strings.HasSuffix(name, ".sst") {
			have[name] = true
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set(headerReplica, info.Replica.String())
	w.Header().Set(headerDatabase, info.Database.String())
	w.Header().Set(headerLatest, strconv.FormatUint(info.Latest, 10))
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	n := 0
	var all []string
	var sizes []int64
	err = func() error {
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			all, sizes = append(all, e.Name()), append(sizes, fi.Size())
			if have[e.Name()] {
				continue
			}
			if err := addFile(tw, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			n++
		}
		end, err := json.Marshal(snapshotEndJSON{Sent: n, Files: all, Sizes: sizes})
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: snapshotEnd, Mode: 0o644, Size: int64(len(end))}); err != nil {
			return err
		}
		if _, err := tw.Write(end); err != nil {
			return err
		}
		return tw.Close()
	}()
	if err != nil {
		lvl := slog.LevelWarn
		if r.Context().Err() != nil {
			lvl = slog.LevelInfo // the client went away
		}
		h.o.Logger.Log(r.Context(), lvl, "snapshot cut", "files sent", n, "remote", r.RemoteAddr, "err", err)
		return
	}
	h.o.Logger.Info("snapshot served", "files", n, "kept by the client", len(all)-n, "latest", info.Latest, "remote", r.RemoteAddr)
}

func addFile(tw *tar.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: filepath.Base(path), Mode: 0o644, Size: st.Size()}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}

// snapshotEndJSON is the snapshot's last member.
type snapshotEndJSON struct {
	Sent  int      `json:"sent"`  // members before it
	Files []string `json:"files"` // every file of the snapshot, sent or held
	Sizes []int64  `json:"sizes"` // their sizes, in the same order
}

// Snapshot receives the server's snapshot into dir (which must not exist),
// each file synced, and says whose it is (merge.Snapshotter). A cut stream
// is asked for again, with backoff, keeping the table files received whole:
// the server then sends only the others (a new snapshot, so it holds what
// was committed meanwhile too). A member that is not a plain file of the
// snapshot's one directory is refused.
func (r *Remote) Snapshot(ctx context.Context, dir string) (replica.SnapshotInfo, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return replica.SnapshotInfo{}, err
	}
	held := map[string]bool{}     // table files received whole, kept across attempts
	var from replica.SnapshotInfo // whose they are
	for attempt := 1; ; attempt++ {
		before := len(held)
		info, err := r.snapshotOnce(ctx, dir, held, &from)
		if err == nil || !errors.Is(err, errSnapshotCut) || ctx.Err() != nil {
			return info, err
		}
		if len(held) > before {
			attempt = 1 // progress: a fresh set of tries
		}
		if attempt >= r.o.Attempts {
			return info, fmt.Errorf("httpsync: %w; %d tries without progress: run the clone again", err, attempt)
		}
		wait := r.backoff(attempt)
		r.o.Logger.Warn("snapshot cut; asking again for the files not held", "held", len(held), "err", err, "wait", wait)
		if err := sleep(ctx, wait); err != nil {
			return info, err
		}
	}
}

// errSnapshotCut marks a snapshot stream that broke off: asking again may
// finish it.
var errSnapshotCut = errors.New("the snapshot stream was cut")

func (r *Remote) snapshotOnce(ctx context.Context, dir string, held map[string]bool, from *replica.SnapshotInfo) (replica.SnapshotInfo, error) {
	var info replica.SnapshotInfo
	// Only table files are kept; anything else of a cut attempt goes.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return info, err
	}
	for _, e := range entries {
		if !held[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return info, err
			}
		}
	}
	q := url.Values{}
	if len(held) > 0 {
		names := make([]string, 0, len(held))
		for name := range held {
			names = append(names, name)
		}
		sort.Strings(names)
		q.Set("have", strings.Join(names, ","))
	}
	resp, err := r.do(ctx, http.MethodGet, r.endpoint("/v1/snapshot", q), nil)
	if err != nil {
		var he *Error
		if errors.As(err, &he) || untrusted(err) {
			return info, err
		}
		return info, fmt.Errorf("%w: %v", errSnapshotCut, err)
	}
	defer resp.Body.Close()
	if info.Replica, err = uuid.Parse(resp.Header.Get(headerReplica)); err == nil {
		if info.Database, err = uuid.Parse(resp.Header.Get(headerDatabase)); err == nil {
			info.Latest, err = strconv.ParseUint(resp.Header.Get(headerLatest), 10, 64)
		}
	}
	if err != nil {
		return info, fmt.Errorf("httpsync: the server's snapshot answer lacks its replica, database or latest header: %v", err)
	}
	if len(held) > 0 && (info.Replica != from.Replica || info.Database != from.Database) {
		// Another replica answered (a new server behind the address):
		// the files held are of another database. Start over.
		clear(held)
		return info, fmt.Errorf("%w: a snapshot of replica %s came, not of %s; starting over", errSnapshotCut, info.Replica, from.Replica)
	}
	from.Replica, from.Database = info.Replica, info.Database
	tr := tar.NewReader(resp.Body)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return info, fmt.Errorf("%w: it ended before its end marker", errSnapshotCut)
		}
		if err != nil {
			return info, fmt.Errorf("%w: reading it: %v", errSnapshotCut, err)
		}
		name := hdr.Name
		if hdr.Typeflag != tar.TypeReg || !snapshotName(name) || hdr.Size < 0 || hdr.Size > maxSnapshotMember {
			return info, fmt.Errorf("httpsync: the snapshot holds %q, which is not a file of a replica's database: refused", name)
		}
		if name == snapshotEnd {
			var end snapshotEndJSON
			b, err := io.ReadAll(io.LimitReader(tr, 16<<20))
			if err == nil {
				err = json.Unmarshal(b, &end)
			}
			if err != nil || end.Sent != n || len(end.Sizes) != len(end.Files) {
				return info, fmt.Errorf("httpsync: the snapshot's end marker %q does not match the %d files that came: refused", b, n)
			}
			// The snapshot is exactly end.Files, at their sizes: every
			// one here, and a held table file it no longer has is
			// dropped.
			want := map[string]bool{}
			for i, f := range end.Files {
				if !snapshotName(f) {
					return info, fmt.Errorf("httpsync: the snapshot's end marker names %q, which is not a file of a replica's database: refused", f)
				}
				want[f] = true
				fi, err := os.Stat(filepath.Join(dir, f))
				if err != nil {
					return info, fmt.Errorf("httpsync: the snapshot's %s is missing: %v", f, err)
				}
				if fi.Size() != end.Sizes[i] {
					if held[f] {
						// Held from an earlier attempt, but not this
						// file: start over.
						clear(held)
						return info, fmt.Errorf("%w: the held %s is not the snapshot's (%d bytes, not %d); starting over", errSnapshotCut, f, fi.Size(), end.Sizes[i])
					}
					return info, fmt.Errorf("httpsync: the snapshot's %s came with %d bytes, its end marker says %d: refused", f, fi.Size(), end.Sizes[i])
				}
			}
			for name := range held {
				if !want[name] {
					os.Remove(filepath.Join(dir, name))
				}
			}
			return info, syncDirectory(dir)
		}
		if held[name] {
			return info, fmt.Errorf("httpsync: the snapshot sent %s again, which this client said it holds: refused", name)
		}
		if err := receiveFile(filepath.Join(dir, name), tr, hdr.Size); err != nil {
			os.Remove(filepath.Join(dir, name))
			return info, fmt.Errorf("%w: receiving its %s: %v", errSnapshotCut, name, err)
		}
		if strings.HasSuffix(name, ".sst") {
			held[name] = true
		}
		n++
	}
}

// snapshotName reports whether name can be a file of the snapshot's one
// directory.
func snapshotName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, `/\`)
}

func receiveFile(path string, r io.Reader, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.CopyN(f, r, size)
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func syncDirectory(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
