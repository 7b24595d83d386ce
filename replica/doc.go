// Package replica is one prophet replica: an append-only log of changesets,
// the records it materializes, LUIDs, merge tickets and a state digest, in
// one Pebble DB (DESIGN.md has the key layout and the commit path). Records
// are last-writer-wins registers ordered by a hybrid logical clock, so
// replicas holding the same changesets hold the same records.
//
// Open or Init a replica, then Commit local edits, Bulk-load many units, or
// Integrate changesets written elsewhere (IntegrateSettled, or a Unit's
// Settle, settles conflicts; the merge package drives it). Every write goes through one
// committer goroutine that groups concurrent callers into one batch and one
// fsync; a call returns once what it wrote is durable. Reads (Get, List,
// History, Log) may run concurrently with writes.
//
// Invariants, checked by Verify and by the tests named in DESIGN.md:
//
//	I1  a commit is acknowledged only after its batch is fsynced
//	I2  the log holds sequence numbers 1..LatestSeq with no gap
//	I3  a changeset and all its effects land in one batch
//	I4  no merge ticket is ahead of the log
//	I5  the log and history are never read past the last durable changeset
//	I6  every changeset was checked against the state before it, except
//	    another replica's nullifications and resolutions (settle.go)
//	I7  records, history, indexes, LUIDs and type stats equal a replay of the log
//	I8  the stored digest equals the digest of the live records
//	I9  a changeset has one encoding (package changeset)
//	I10 each changeset ID is integrated at most once
package replica
