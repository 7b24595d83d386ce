package cli

import (
	"encoding/json"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/prophet-sync/prophet/replica"
	"github.com/prophet-sync/prophet/resolution"
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
//
// Clone (clone: one object):
//
//	{"source":"<absolute dir>","dir":"<absolute dir of the new replica>",
//	 "replica":"<its UUID>","database":"…","changesets":7,"records":3,
//	 "resolutions":1,"seconds":0.012}
//
//	changesets is how many were copied, records how many are live in the
//	new replica, resolutions the decisions copied from the source's
//	resolution database.
//
// Pull (pull and push: one object):
//
//	{"direction":"pull","source":"<absolute dir>","target":"<absolute dir>",
//	 "peer":"origin","source_replica":"…","read":5,"skipped":2,
//	 "integrated":4,"conflicts":1,"resolutions":1,"up_to_date":false}
//
//	direction is "pull" or "push"; the changesets go from source to target
//	either way. peer is the peer name used, "" for a directory. read counts
//	the source's log entries read, skipped those of them already in the
//	target; integrated counts the changesets appended to the target,
//	nullifications and resolutions included; conflicts those settled;
//	resolutions the decisions received. up_to_date is integrated and
//	resolutions both 0.
//
// Dry run (pull --dry-run, push --dry-run: one object):
//
//	{"direction":"pull","dry_run":true,"source":"…","target":"…","peer":"",
//	 "source_replica":"…","read":5,"new":3,"already_here":2,"resolutions":1}
//
//	read counts the source's log entries a pull would read; new those the
//	target's merge tickets lack, already_here the others (read = new +
//	already_here); resolutions the decisions it would receive.
//
// Conflict (conflicts: one per line, oldest first):
//
//	{"origin":"<replica UUID that decided>","seq":1,"stamp":"…","how":"resolver:theirs",
//	 "fingerprint":"<sha256 hex>","type":"task","uuid":"…","luid":1,
//	 "source_live":true,"target_live":true,"final_live":true,
//	 "props":[{"name":"status","base":"new","source":"open","target":"closed","final":"open"}]}
//
//	(origin, seq) identifies the decision; stamp is when it was made. The
//	conflict is as the deciding replica saw it: base the values both sides
//	started from, source what the incoming change made of the record,
//	target what the deciding replica had, final the settlement. luid is 0
//	when this replica never saw the record.
//
// Peer (peer list: one per line, by name):
//
//	{"name":"origin","location":"<absolute dir>"}

type recordJSON = replica.RecordJSON

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

type cloneJSON struct {
	Source      string  `json:"source"`
	Dir         string  `json:"dir"`
	Replica     string  `json:"replica"`
	Database    string  `json:"database"`
	Changesets  int     `json:"changesets"`
	Records     uint64  `json:"records"`
	Resolutions int     `json:"resolutions"`
	Seconds     float64 `json:"seconds"`
}

type syncJSON struct {
	Direction     string `json:"direction"`
	Source        string `json:"source"`
	Target        string `json:"target"`
	Peer          string `json:"peer"`
	SourceReplica string `json:"source_replica"`
	Read          uint64 `json:"read"`
	Skipped       uint64 `json:"skipped"`
	Integrated    int    `json:"integrated"`
	Conflicts     int    `json:"conflicts"`
	Resolutions   int    `json:"resolutions"`
	UpToDate      bool   `json:"up_to_date"`
}

type dryRunJSON struct {
	Direction     string `json:"direction"`
	DryRun        bool   `json:"dry_run"`
	Source        string `json:"source"`
	Target        string `json:"target"`
	Peer          string `json:"peer"`
	SourceReplica string `json:"source_replica"`
	Read          uint64 `json:"read"`
	New           uint64 `json:"new"`
	AlreadyHere   uint64 `json:"already_here"`
	Resolutions   int    `json:"resolutions"`
}

type conflictJSON struct {
	Origin      string             `json:"origin"`
	Seq         uint64             `json:"seq"`
	Stamp       string             `json:"stamp"`
	How         string             `json:"how"`
	Fingerprint string             `json:"fingerprint"`
	Type        string             `json:"type"`
	UUID        string             `json:"uuid"`
	LUID        uint64             `json:"luid"`
	SourceLive  bool               `json:"source_live"`
	TargetLive  bool               `json:"target_live"`
	FinalLive   bool               `json:"final_live"`
	Props       []conflictPropJSON `json:"props"`
}

type conflictPropJSON struct {
	Name   string `json:"name"`
	Base   string `json:"base"`
	Source string `json:"source"`
	Target string `json:"target"`
	Final  string `json:"final"`
}

type peerJSON struct {
	Name     string `json:"name"`
	Location string `json:"location"`
	TokenEnv string `json:"token_env,omitempty"`
}

func toConflictJSON(d *resolution.Decision, luid uint64) *conflictJSON {
	cf := &d.Conflict
	out := &conflictJSON{Origin: jsonUUID(d.Origin), Seq: d.Seq, Stamp: jsonTime(time.Unix(0, d.Stamp)), How: d.How,
		Fingerprint: d.Fingerprint.String(), Type: cf.Type, UUID: jsonUUID(cf.Record), LUID: luid,
		SourceLive: cf.Source.Live, TargetLive: cf.Target.Live, FinalLive: d.Final.Live,
		Props: make([]conflictPropJSON, len(cf.Base))}
	for i, p := range cf.Base {
		out.Props[i] = conflictPropJSON{p.Name, p.Value, cf.Source.Props[i].Value, cf.Target.Props[i].Value, d.Final.Props[i].Value}
	}
	return out
}

func jsonTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func jsonUUID(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func toRecordJSON(rec *replica.Record) *recordJSON { return rec.ToJSON() }

// writeJSON writes v as one line.
func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	return e.Encode(v)
}
