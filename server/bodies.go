package server

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// The API bodies of events, twins and connections are their own types, not
// the gorm models: the store keeps replicas, conflicts, policies and options
// as JSON text, and serving the models put JSON strings inside the JSON
// (issue 18). These types carry them as JSON values, and the log as lines.
// CHANGELOG.md lists the fields that changed.

// jsonValue is stored JSON text as a JSON value: nil (null) when empty, and
// a JSON string when the text is not JSON, so one bad row cannot fail a list.
func jsonValue(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if !json.Valid([]byte(s)) {
		b, _ := json.Marshal(s)
		return b
	}
	return json.RawMessage(s)
}

func jsonValuePtr(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return jsonValue(*s)
}

// logLines splits an event's log (text, one line per entry) into its lines;
// never null, so clients can iterate without a check.
func logLines(log string) []string {
	if log == "" {
		return []string{}
	}
	return strings.Split(log, "\n")
}

// eventOut is a sync event as the API serves it.
type eventOut struct {
	ID              int64           `json:"id"`
	ConnectionID    int64           `json:"connection_id"`
	TwinID          int64           `json:"twin_id"`
	Direction       store.Direction `json:"direction"`
	SourceID        string          `json:"source_id"`
	Action          string          `json:"action,omitempty"`
	Replica         json.RawMessage `json:"replica"`
	Previous        json.RawMessage `json:"previous,omitempty"`
	Status          string          `json:"status"`
	Attempts        int             `json:"attempts"`
	TotalAttempts   int             `json:"total_attempts"`
	NextAttemptAt   time.Time       `json:"next_attempt_at"`
	LastError       string          `json:"last_error"`
	Log             []string        `json:"log"`
	SourceUpdatedAt *time.Time      `json:"source_updated_at,omitempty"`
	Conflicts       json.RawMessage `json:"conflicts,omitempty"`
	Resolution      json.RawMessage `json:"resolution,omitempty"`
	Partial         json.RawMessage `json:"partial,omitempty"`
	UnlinkedPair    *string         `json:"unlinked_pair,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

func eventBody(e store.SyncEvent) eventOut {
	return eventOut{ID: e.ID, ConnectionID: e.ConnectionID, TwinID: e.TwinID, Direction: e.Direction,
		SourceID: e.SourceID, Action: e.Action, Replica: jsonValue(e.Replica), Previous: jsonValuePtr(e.Previous),
		Status: e.Status, Attempts: e.Attempts, TotalAttempts: e.TotalAttempts, NextAttemptAt: e.NextAttemptAt, LastError: e.LastError,
		Log: logLines(e.Log), SourceUpdatedAt: e.SourceUpdatedAt, Conflicts: jsonValuePtr(e.Conflicts),
		Resolution: jsonValuePtr(e.Resolution), Partial: jsonValuePtr(e.Partial), UnlinkedPair: e.UnlinkedPair, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt}
}

func eventBodies(evs []store.SyncEvent) []eventOut {
	out := make([]eventOut, len(evs))
	for i, e := range evs {
		out[i] = eventBody(e)
	}
	return out
}

// twinOut is a linked pair as the API serves it: the last replicas sent
// each way and each side's base are JSON objects.
type twinOut struct {
	ID           int64           `json:"id"`
	ConnectionID int64           `json:"connection_id"`
	AID          *string         `json:"a_id"`
	BID          *string         `json:"b_id"`
	SentAB       json.RawMessage `json:"sent_ab,omitempty"`
	SentBA       json.RawMessage `json:"sent_ba,omitempty"`
	Origin       store.Side      `json:"origin"`
	BaseA        json.RawMessage `json:"base_a,omitempty"`
	BaseB        json.RawMessage `json:"base_b,omitempty"`
	AWrittenAt   *time.Time      `json:"a_written_at,omitempty"`
	BWrittenAt   *time.Time      `json:"b_written_at,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

func twinBody(t store.Twin) twinOut {
	return twinOut{ID: t.ID, ConnectionID: t.ConnectionID, AID: t.AID, BID: t.BID,
		SentAB: jsonValuePtr(t.SentAB), SentBA: jsonValuePtr(t.SentBA), Origin: t.Origin,
		BaseA: jsonValuePtr(t.BaseA), BaseB: jsonValuePtr(t.BaseB), AWrittenAt: t.AWrittenAt,
		BWrittenAt: t.BWrittenAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func twinBodies(ts []store.Twin) []twinOut {
	out := make([]twinOut, len(ts))
	for i, t := range ts {
		out[i] = twinBody(t)
	}
	return out
}

// connectionBody is a connection as the API serves it: its conflict policy
// and options are JSON objects (null when unset).
type connectionBody struct {
	ID              int64           `json:"id"`
	Name            string          `json:"name"`
	SystemAID       int64           `json:"system_a_id"`
	SystemBID       int64           `json:"system_b_id"`
	Active          bool            `json:"active"`
	Template        string          `json:"template"`
	TeamID          int64           `json:"team_id"`
	TemplateID      int64           `json:"template_id,omitempty"`
	TemplateVersion int             `json:"template_version,omitempty"`
	ConflictPolicy  json.RawMessage `json:"conflict_policy"`
	Options         json.RawMessage `json:"options"`
	PausedReason    string          `json:"paused_reason,omitempty"`
	QuarantinedAt   *time.Time      `json:"quarantined_at,omitempty"`
	CreatedAt       time.Time       `json:"created_at"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

func connectionBodyOf(c store.Connection) connectionBody {
	return connectionBody{ID: c.ID, Name: c.Name, SystemAID: c.SystemAID, SystemBID: c.SystemBID, Active: c.Active,
		Template: c.Template, TeamID: c.TeamID, TemplateID: c.TemplateID, TemplateVersion: c.TemplateVersion,
		ConflictPolicy: jsonValue(c.ConflictPolicy), Options: jsonValue(c.Options), PausedReason: c.PausedReason,
		QuarantinedAt: c.QuarantinedAt, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}
