// Package peerlink is the stand-in connector for the peer side of a peer
// link's connection (docs/peers.md). The peer's system is in another
// deployment that this one never reaches: nothing is read from it here
// (Changes is always empty: its changes arrive as signed messages) and
// nothing is written through it (the engine puts the replica in the
// link's outbox instead, engine/peer.go). It exists so that a peer link's
// connection is an ordinary connection with two systems.
package peerlink

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/connectors"
)

// Kind is the connector kind of a peer link's stand-in system.
const Kind = "peer"

// Open builds the stand-in; it has no settings to check and opens nothing.
func Open(context.Context, connectors.Config) (connectors.Connector, error) { return side{}, nil }

type side struct{}

var errNotHere = fmt.Errorf("%w: the peer's system is in the other deployment and is reached only through the peer link", connectors.ErrInvalid)

func (side) Changes(context.Context, string, int) (connectors.Page, error) {
	return connectors.Page{}, nil
}
func (side) Get(context.Context, string) (connectors.Entity, error) {
	return connectors.Entity{}, errNotHere
}
func (side) Create(context.Context, map[string]any) (connectors.Entity, error) {
	return connectors.Entity{}, errNotHere
}
func (side) Update(context.Context, string, map[string]any) (connectors.Entity, error) {
	return connectors.Entity{}, errNotHere
}
func (side) AddComment(context.Context, string, connectors.Comment) (connectors.Comment, error) {
	return connectors.Comment{}, errNotHere
}
func (side) Describe(context.Context) (connectors.Schema, error) {
	return connectors.Schema{EntityType: "replica"}, nil
}
func (side) Close() error { return nil }
