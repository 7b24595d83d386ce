// Package merge integrates changesets from one replica into another: clone,
// pull and push over small Source and Sink interfaces, conflict detection,
// and the resolvers that settle conflicts. It is built in the next issue; see
// DESIGN.md for the replica primitives it will use (Integrate, tickets,
// PeekID).
package merge
