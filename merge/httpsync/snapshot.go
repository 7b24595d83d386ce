package httpsync

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
)

// A snapshot is the served replica's whole database (replica.Snapshot: a
// Pebble checkpoint taken while its commits wait), sent as a tar of its
// files, flat, then a last member snapshotEnd holding the number of files
// before it: a stream cut at a member boundary is still caught. The
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
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set(headerReplica, info.Replica.String())
	w.Header().Set(headerDatabase, info.Database.String())
	w.Header().Set(headerLatest, strconv.FormatUint(info.Latest, 10))
	w.WriteHeader(http.StatusOK)
	tw := tar.NewWriter(w)
	n := 0
	err = func() error {
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			if err := addFile(tw, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
			n++
		}
		end := []byte(strconv.Itoa(n))
		if err := tw.WriteHeader(&tar.Header{Name: snapshotEnd, Mode: 0o644, Size: int64(len(end))}); err != nil {
			return err
		}
		if _, err := tw.Write(end); err != nil {
			return err
		}
		return tw.Close()
	}()
	if err != nil && r.Context().Err() == nil {
		h.o.Logger.Warn("snapshot cut", "remote", r.RemoteAddr, "err", err)
		return
	}
	h.o.Logger.Info("snapshot served", "files", n, "latest", info.Latest, "remote", r.RemoteAddr)
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

// Snapshot receives the server's snapshot into dir (which must not exist),
// each file synced, and says whose it is (merge.Snapshotter). A cut stream,
// or a member that is not a plain file of the snapshot's one directory, is
// an error; run the clone again.
func (r *Remote) Snapshot(ctx context.Context, dir string) (replica.SnapshotInfo, error) {
	resp, err := r.do(ctx, http.MethodGet, r.endpoint("/v1/snapshot", nil), nil)
	if err != nil {
		return replica.SnapshotInfo{}, err
	}
	defer resp.Body.Close()
	var info replica.SnapshotInfo
	if info.Replica, err = uuid.Parse(resp.Header.Get(headerReplica)); err == nil {
		if info.Database, err = uuid.Parse(resp.Header.Get(headerDatabase)); err == nil {
			info.Latest, err = strconv.ParseUint(resp.Header.Get(headerLatest), 10, 64)
		}
	}
	if err != nil {
		return info, fmt.Errorf("httpsync: the server's snapshot answer lacks its replica, database or latest header: %v", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return info, err
	}
	tr := tar.NewReader(resp.Body)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return info, errors.New("httpsync: the snapshot ended before its end marker: the connection was cut; run the clone again")
		}
		if err != nil {
			return info, fmt.Errorf("httpsync: reading the snapshot: %w; run the clone again", err)
		}
		name := hdr.Name
		if hdr.Typeflag != tar.TypeReg || name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || hdr.Size < 0 || hdr.Size > maxSnapshotMember {
			return info, fmt.Errorf("httpsync: the snapshot holds %q, which is not a file of a replica's database: refused", name)
		}
		if name == snapshotEnd {
			b, err := io.ReadAll(io.LimitReader(tr, 32))
			if err != nil {
				return info, err
			}
			if want, err := strconv.Atoi(string(b)); err != nil || want != n {
				return info, fmt.Errorf("httpsync: the snapshot's end marker says %q files, %d came: refused", b, n)
			}
			return info, syncDirectory(dir)
		}
		if err := receiveFile(filepath.Join(dir, name), tr, hdr.Size); err != nil {
			return info, fmt.Errorf("httpsync: receiving the snapshot's %s: %w; run the clone again", name, err)
		}
		n++
	}
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
