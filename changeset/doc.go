// Package changeset is prophet's data model: changesets, the changes they make
// to records, and the canonical msgpack encoding that identifies them on every
// replica.
//
// A Changeset is written once, on its origin replica, and is identified
// everywhere by (Origin, OriginSeq). Its canonical encoding (see Encode and
// DESIGN.md, "Wire format") leaves out the two fields that differ from copy to
// copy, Seq and Source, so its Hash is the same on every replica.
//
// Values are strings. The empty string means "absent": a property set to ""
// does not exist, and an unset property reads as "". This is Prophet's rule;
// DESIGN.md explains why we keep it.
//
// Of prophet's packages it uses only internal/wire, the strict msgpack reader
// and name rule it shares with resolution.
package changeset
