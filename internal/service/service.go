// Package service owns the configuration changes of connections: the API's
// handlers and `duplex apply` call the same operations (issue 18). Each one
// validates its input, enforces ownership (a connection joins only its own
// team's systems), writes the rows and the audit entry in one transaction,
// and only then tells the engine, so a change is never kept unaudited and
// the engine never reloads a change that was rolled back.
package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/credential"
	"github.com/duplexsync/duplex/scripting"
)

// ErrInvalid marks input the operation refuses (the API's 400).
var ErrInvalid = errors.New("invalid")

// ErrForbidden marks a change the caller's team may not make (the API's 403).
var ErrForbidden = errors.New("forbidden")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Engine is told about a change once it is committed: a connection to
// reload, or events queued again.
type Engine interface {
	Reload(connID int64)
	// ReloadSystem reopens a system's connector after its settings or
	// secrets changed, or it was deleted.
	ReloadSystem(systemID int64)
	Wake()
}

// Checker compiles what needs the live system: a trigger is checked by the
// system's connector, and a unique rule needs a connector that can look
// entities up. Without one (apply, whose systems may be new in the same
// transaction) triggers are checked offline and unique rules are allowed.
type Checker interface {
	ValidateTrigger(ctx context.Context, systemID int64, src string) error
	// CheckScript compiles a script away from this process (the engine's
	// sandbox workers): a compile's CPU grows faster than the source.
	CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error
	CanFind(ctx context.Context, systemID int64) (bool, error)
	// CheckSystem checks what a system's settings reach against the store
	// fence and its team's outbound policy.
	CheckSystem(ctx context.Context, sys store.System) error
}

// Service runs configuration changes over one store.
type Service struct {
	st    *store.Store
	eng   Engine
	check Checker
	kinds KindCheck
	// passwords is the cost of new password hashes (nil: the default).
	passwords *credential.Params
}

// New makes a Service; eng and check may be nil (no engine to tell, offline
// checks). Over a Store bound to a transaction (apply's), its operations
// write and audit inside that transaction (a savepoint each), which
// commits or rolls back with the rest.
func New(st *store.Store, eng Engine, check Checker) *Service {
	return &Service{st: st, eng: eng, check: check}
}

// change runs fn and the audit entry it returns in one transaction, then
// reloads the connection.
func (s *Service) change(ctx context.Context, actor, action string, fn func(tx *store.Store) (connID int64, detail string, err error)) (int64, error) {
	id, err := s.write(ctx, actor, action, fn)
	if err == nil && s.eng != nil {
		s.eng.Reload(id)
	}
	return id, err
}

// write runs fn and the audit entry it returns in one transaction.
func (s *Service) write(ctx context.Context, actor, action string, fn func(tx *store.Store) (connID int64, detail string, err error)) (int64, error) {
	var id int64
	err := s.st.Tx(ctx, func(tx *store.Store) error {
		connID, detail, err := fn(tx)
		if err != nil {
			return err
		}
		id = connID
		return tx.AddAudit(ctx, &store.AuditEntry{Actor: actor, Action: action, ConnectionID: &connID, Detail: detail})
	})
	return id, err
}

// wake tells the engine's workers events were queued again.
func (s *Service) wake() {
	if s.eng != nil {
		s.eng.Wake()
	}
}

// teamChange runs fn and the audit entry of teamID (0 for the org) whose
// detail fn returns in one transaction.
func (s *Service) teamChange(ctx context.Context, actor, action string, teamID int64, fn func(tx *store.Store) (string, error)) error {
	return s.record(ctx, actor, action, teamID, nil, fn)
}

// record runs fn and the audit entry whose detail fn returns in one
// transaction. teamID and connID name what the entry is about (0 and nil
// for none).
func (s *Service) record(ctx context.Context, actor, action string, teamID int64, connID *int64, fn func(tx *store.Store) (detail string, err error)) error {
	return s.st.Tx(ctx, func(tx *store.Store) error {
		detail, err := fn(tx)
		if err != nil {
			return err
		}
		e := &store.AuditEntry{Actor: actor, Action: action, ConnectionID: connID, Detail: detail}
		if teamID != 0 {
			e.TeamID = &teamID
		}
		return tx.AddAudit(ctx, e)
	})
}

// Note records an audit entry on its own, for what changes nothing in the
// store. A change's entry is written by the change's operation, in its
// transaction.
func (s *Service) Note(ctx context.Context, actor, action string, teamID int64, connID *int64, detail string) error {
	return s.record(ctx, actor, action, teamID, connID, func(*store.Store) (string, error) { return detail, nil })
}
