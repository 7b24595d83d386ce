package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/changeset"
	"github.com/prophet-sync/prophet/replica"
)

// The --json shapes. They are a stable interface: add fields if need be,
// never rename, remove or retype one. Every read command writes JSON lines
// (one object per line, UTF-8, keys in the order below, no HTML escaping).
// An absent value is "" (never null, never a missing key). Times are
// RFC 3339 with nanoseconds, in UTC. UUIDs are lower-case with dashes.
//
// Record (show: one; list, export: one per line; import reads the same):
//
//	{"type":"task","uuid":"…","luid":3,"creator":"a@example.com",
//	 "origin":"<replica UUID that created it>","created":"2024-01-02T03:04:05.5Z",
//	 "props":{"status":"open","title":"Fix it"}}
//
//	props is {} for a record without properties. import reads "type",
//	"uuid" (optional: without it a new record is made) and "props"; it
//	accepts and ignores "luid", "creator", "origin" and "created", which the
//	replica keeps itself, and refuses any other key.
//
// Changeset (history, log: one per line):
//
//	{"seq":7,"origin":"…","origin_seq":7,"creator":"…","created":"…",
//	 "is_nullification":false,"is_resolution":false,"hash":"<sha256 hex>",
//	 "changes":[{"type":"task","uuid":"…","op":"update",
//	             "props":[{"name":"status","old":"open","new":"closed"}]}]}
//
//	seq is the position in this replica's log; origin and origin_seq where
//	the changeset was first written; hash is the SHA-256 of its canonical
//	encoding, the same on every replica. op is "add", "update" or "delete".
//	changes is sorted by (type, uuid) and props by name; props is [] when
//	a change lists none.
//
// Info (info: one object):
//
//	{"replica":"…","database":"…","dir":"…","latest_seq":7,"digest":"<hex>",
//	 "counts":{"task":3},"tickets":{"<origin UUID>":7}}
//
// Verify (verify: one object; ok is problems == []):
//
//	{"ok":true,"changesets":7,"records":3,"problems":[],"truncated":0}

type recordJSON struct {
	Type    string            `json:"type"`
	UUID    string            `json:"uuid"`
	LUID    uint64            `json:"luid"`
	Creator string            `json:"creator"`
	Origin  string            `json:"origin"`
	Created string            `json:"created"`
	Props   map[string]string `json:"props"`
}

type changesetJSON struct {
	Seq             uint64       `json:"seq"`
	Origin          string       `json:"origin"`
	OriginSeq       uint64       `json:"origin_seq"`
	Creator         string       `json:"creator"`
	Created         string       `json:"created"`
	IsNullification bool         `json:"is_nullification"`
	IsResolution    bool         `json:"is_resolution"`
	Hash            string       `json:"hash"`
	Changes         []changeJSON `json:"changes"`
}

type changeJSON struct {
	Type  string     `json:"type"`
	UUID  string     `json:"uuid"`
	Op    string     `json:"op"`
	Props []propJSON `json:"props"`
}

type propJSON struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

type infoJSON struct {
	Replica   string            `json:"replica"`
	Database  string            `json:"database"`
	Dir       string            `json:"dir"`
	LatestSeq uint64            `json:"latest_seq"`
	Digest    string            `json:"digest"`
	Counts    map[string]uint64 `json:"counts"`
	Tickets   map[string]uint64 `json:"tickets"`
}

type verifyJSON struct {
	OK         bool     `json:"ok"`
	Changesets uint64   `json:"changesets"`
	Records    uint64   `json:"records"`
	Problems   []string `json:"problems"`
	Truncated  int      `json:"truncated"`
}

func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func jsonUUID(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func toRecordJSON(rec *replica.Record) *recordJSON {
	props := make(map[string]string, len(rec.Props))
	for _, p := range rec.Props {
		props[p.Name] = p.Value
	}
	return &recordJSON{Type: rec.Type, UUID: jsonUUID(rec.UUID), LUID: rec.LUID, Creator: rec.Creator,
		Origin: jsonUUID(rec.Origin), Created: jsonTime(rec.Created), Props: props}
}

func toChangesetJSON(cs *changeset.Changeset, hash changeset.Hash) *changesetJSON {
	out := &changesetJSON{Seq: cs.Seq, Origin: jsonUUID(cs.Origin), OriginSeq: cs.OriginSeq,
		Creator: cs.Creator, Created: jsonTime(cs.Created), IsNullification: cs.IsNullification,
		IsResolution: cs.IsResolution, Hash: hash.String(), Changes: make([]changeJSON, len(cs.Changes))}
	for i, ch := range cs.Changes {
		c := changeJSON{Type: ch.RecordType, UUID: jsonUUID(ch.Record), Op: ch.Op.String(), Props: make([]propJSON, len(ch.Props))}
		for j, p := range ch.Props {
			c.Props[j] = propJSON{p.Name, p.Old, p.New}
		}
		out.Changes[i] = c
	}
	return out
}

// writeJSON writes v as one line.
func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	return e.Encode(v)
}
