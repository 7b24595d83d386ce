// Package foreign will hold the gateway framework for foreign replicas (RT,
// GitHub, Phabricator): the gateway interface, one state DB per foreign
// replica, and durable sync operations.
package foreign
