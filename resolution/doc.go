// Package resolution is the resolution database: it records how merge
// conflicts were settled, so that every replica that meets the same conflict
// settles it the same way without asking.
//
// A Conflict is one record's three-way disagreement: the common ancestor
// (Base), what an incoming change makes of the record (Source) and what this
// replica has (Target). Its Fingerprint is the same whichever side sees it. A
// Decision records how one replica settled one conflict (Final, and How).
//
// Decisions form a grow-only set, replicated like changesets: each is
// identified by (Origin, Seq), Seq counting 1, 2, 3... per origin, and a sync
// sends the decisions the peer lacks (Tickets, Since, Integrate) before the
// changesets. When several replicas decided the same conflict, Lookup takes
// the outcome decided most often, and breaks a tie by the newest decision.
//
// The database is its own Pebble DB in the replica directory
// (DIR/resolution/). Its keys (keys.go), with seq8 a big-endian uint64 and
// uuid16 and fingerprint32 raw bytes:
//
//	M "format"                     -> "1": the key-layout version; Open refuses others
//	M "replica-uuid"               -> uuid16: the owner; Open refuses another replica's
//	D origin16 seq8                -> the decision's canonical encoding (Encode)
//	F fingerprint32 origin16 seq8  -> "": the decisions of one conflict, for Lookup
//
// A decision's D and F keys are written in one synced batch. Each origin's
// decisions are 1..N with no gap (Integrate refuses a gap), so the highest
// Seq held from an origin is its last D key, found by one seek; Open loads
// them. Readers see only decisions whose batch is synced, so nothing that a
// crash could take back is ever sent to a peer.
//
// Of prophet's packages it uses only internal/wire, the strict msgpack reader
// and name rule it shares with changeset.
package resolution
