// Package resolution will hold the resolution database: a separate Pebble DB
// in the replica directory recording how each conflict (by fingerprint) was
// settled, sent before the changesets on every sync so that every replica
// settles the same conflict the same way.
package resolution
