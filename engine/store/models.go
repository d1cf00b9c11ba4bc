package store

import "time"

// Side names one end of a connection.
type Side string

// The two sides.
const (
	SideA Side = "a"
	SideB Side = "b"
)

// Other returns the opposite side.
func (s Side) Other() Side {
	if s == SideA {
		return SideB
	}
	return SideA
}

// Valid reports whether s is "a" or "b".
func (s Side) Valid() bool { return s == SideA || s == SideB }

// Direction is the way a sync event flows.
type Direction string

// The two directions.
const (
	AToB Direction = "a_to_b"
	BToA Direction = "b_to_a"
)

// DirectionFrom is the direction of a change that happened on side s.
func DirectionFrom(s Side) Direction {
	if s == SideA {
		return AToB
	}
	return BToA
}

// Source is the side a direction starts from.
func (d Direction) Source() Side {
	if d == AToB {
		return SideA
	}
	return SideB
}

// ScriptKind is what a script version holds.
type ScriptKind string

// Script kinds, one of each per side.
const (
	KindTrigger  ScriptKind = "trigger"
	KindOutgoing ScriptKind = "outgoing"
	KindIncoming ScriptKind = "incoming"
)

// KindRules is a side's validation rules (a JSON list, see
// scripting.Rule), versioned like the scripts. It is not in ScriptKinds:
// templates, config folders and CurrentScripts carry the three scripts
// only; CurrentRules reads the rules.
const KindRules ScriptKind = "rules"

// ScriptKinds lists the kinds in display order.
var ScriptKinds = []ScriptKind{KindTrigger, KindOutgoing, KindIncoming}

// Event statuses.
const (
	StatusQueued   = "queued"
	StatusDone     = "done"
	StatusFailed   = "failed"
	StatusSkipped  = "skipped"
	StatusConflict = "conflict" // waits for a person to choose (manual conflict policy)
)

// The waiting statuses as SQL literals. The queue's partial indexes
// (migration 00032) hold only these rows, and a planner can use one only
// when the query names the same value: PostgreSQL's generic plan of a
// prepared statement cannot see a bound parameter's value, and SQLite's
// INDEXED BY is checked before any value is bound.
const (
	queuedSQL  = "'" + StatusQueued + "'"
	pendingSQL = "'" + DeliveryPending + "'"
)

// System is one configured instance of an external tool.
type System struct {
	ID             int64  `gorm:"primaryKey" json:"id"`
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	TeamID         int64  `json:"team_id"`
	Settings       string `json:"-"` // JSON; exposed decoded by the API
	Secrets        []byte `json:"-"` // sealed; never leaves the store decrypted except to a connector
	PollIntervalMS int64  `gorm:"column:poll_interval_ms" json:"poll_interval_ms"`
	Cursor         string `json:"cursor"`
	// RatePerSecond and RateBurst bound the requests Duplex makes to the
	// system (a token bucket); 0 means unlimited.
	RatePerSecond float64   `json:"rate_per_second"`
	RateBurst     int       `json:"rate_burst"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Connection is a pair of systems with per-side scripts and triggers.
type Connection struct {
	ID        int64  `gorm:"primaryKey" json:"id"`
	Name      string `json:"name"`
	SystemAID int64  `gorm:"column:system_a_id" json:"system_a_id"`
	SystemBID int64  `gorm:"column:system_b_id" json:"system_b_id"`
	Active    bool   `json:"active"`
	Template  string `json:"template"`
	TeamID    int64  `json:"team_id"`
	// TemplateID and TemplateVersion name the team template (and its
	// version) the connection was made from or last upgraded to; 0 if none.
	TemplateID      int64 `json:"template_id,omitempty"`
	TemplateVersion int   `json:"template_version,omitempty"`
	// TemplateParams (JSON object) are the parameter values it was
	// rendered with, reused by an upgrade; "" if none. Shown by the
	// template-status route.
	TemplateParams string `json:"-"`
	// ConflictPolicy is JSON: {"default": "a"|"b"|"newest"|"manual",
	// "fields": {"<target field>": policy}}; empty means side a wins.
	ConflictPolicy string `json:"conflict_policy"`
	// Options is JSON: {"on_unmatch": "keep" | "unlink"}.
	Options string `json:"options"`
	// PausedReason says why the engine paused the connection (quarantine,
	// at QuarantinedAt); "" when it runs or a person paused it.
	PausedReason  string     `json:"paused_reason,omitempty"`
	QuarantinedAt *time.Time `json:"quarantined_at,omitempty"`
	// LimitHits counts its script runs that hit a limit in the window that
	// started at LimitSince (store.RecordLimitHit).
	LimitHits  int        `json:"-"`
	LimitSince *time.Time `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
}

// SystemID returns the system on side s.
func (c Connection) SystemID(s Side) int64 {
	if s == SideA {
		return c.SystemAID
	}
	return c.SystemBID
}

// ScriptVersion is one saved version of a trigger or script.
type ScriptVersion struct {
	ID           int64      `gorm:"primaryKey" json:"id"`
	ConnectionID int64      `json:"connection_id"`
	Side         Side       `json:"side"`
	Kind         ScriptKind `json:"kind"`
	Version      int        `json:"version"`
	Source       string     `json:"source"`
	Author       string     `json:"author"`
	CreatedAt    time.Time  `json:"created_at"`
}

// Twin links an entity on side a with its counterpart on side b.
type Twin struct {
	ID           int64      `gorm:"primaryKey" json:"id"`
	ConnectionID int64      `json:"connection_id"`
	AID          *string    `gorm:"column:a_id" json:"a_id"`
	BID          *string    `gorm:"column:b_id" json:"b_id"`
	AHash        string     `gorm:"column:a_hash" json:"-"`
	BHash        string     `gorm:"column:b_hash" json:"-"`
	SentAB       *string    `gorm:"column:sent_ab" json:"sent_ab,omitempty"`
	SentBA       *string    `gorm:"column:sent_ba" json:"sent_ba,omitempty"`
	CommentLinks string     `json:"-"`
	Origin       Side       `json:"origin"` // the side whose change created it; "" when linked by hand
	BaseA        *string    `gorm:"column:base_a" json:"base_a,omitempty"`
	BaseB        *string    `gorm:"column:base_b" json:"base_b,omitempty"`
	AWrittenAt   *time.Time `gorm:"column:a_written_at" json:"a_written_at,omitempty"`
	BWrittenAt   *time.Time `gorm:"column:b_written_at" json:"b_written_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`

	// What the scripts produced when the last event in a direction was
	// applied (engine/records.go); nil: nothing recorded.
	ScriptsAB *string `gorm:"column:scripts_ab" json:"-"`
	ScriptsBA *string `gorm:"column:scripts_ba" json:"-"`
}

// Base is side s's fields as of the last sync (JSON), or nil.
func (t *Twin) Base(s Side) *string {
	if s == SideA {
		return t.BaseA
	}
	return t.BaseB
}

// SetBase records side s's fields as of a sync.
func (t *Twin) SetBase(s Side, fields string) {
	if s == SideA {
		t.BaseA = &fields
	} else {
		t.BaseB = &fields
	}
}

// WrittenAt is when Duplex last wrote to side s, or nil.
func (t *Twin) WrittenAt(s Side) *time.Time {
	if s == SideA {
		return t.AWrittenAt
	}
	return t.BWrittenAt
}

// SetWrittenAt records a write by Duplex to side s.
func (t *Twin) SetWrittenAt(s Side, at time.Time) {
	if s == SideA {
		t.AWrittenAt = &at
	} else {
		t.BWrittenAt = &at
	}
}

// ID returns the entity id on side s ("" while it does not exist yet).
func (t *Twin) EntityID(s Side) string {
	p := t.AID
	if s == SideB {
		p = t.BID
	}
	if p == nil {
		return ""
	}
	return *p
}

// SetEntityID records the entity id on side s.
func (t *Twin) SetEntityID(s Side, id string) {
	if s == SideA {
		t.AID = &id
	} else {
		t.BID = &id
	}
}

// Hash is the content hash of what Duplex last wrote to side s.
func (t *Twin) Hash(s Side) string {
	if s == SideA {
		return t.AHash
	}
	return t.BHash
}

// SetHash records the content hash of what Duplex wrote to side s.
func (t *Twin) SetHash(s Side, h string) {
	if s == SideA {
		t.AHash = h
	} else {
		t.BHash = h
	}
}

// Sent is the last replica enqueued in direction d (JSON), or nil.
func (t *Twin) Sent(d Direction) *string {
	if d == AToB {
		return t.SentAB
	}
	return t.SentBA
}

// SetSent records the last replica enqueued in direction d.
func (t *Twin) SetSent(d Direction, replica string) {
	if d == AToB {
		t.SentAB = &replica
	} else {
		t.SentBA = &replica
	}
}

// Scripts is the engine's record of what the scripts produced when the
// twin's last event in direction d was applied, or nil.
func (t *Twin) Scripts(d Direction) *string {
	if d == AToB {
		return t.ScriptsAB
	}
	return t.ScriptsBA
}

// SetScripts sets that record.
func (t *Twin) SetScripts(d Direction, rec string) {
	if d == AToB {
		t.ScriptsAB = &rec
	} else {
		t.ScriptsBA = &rec
	}
}

// SyncEvent is a durable unit of work in the queue.
type SyncEvent struct {
	ID           int64     `gorm:"primaryKey" json:"id"`
	ConnectionID int64     `json:"connection_id"`
	TwinID       int64     `json:"twin_id"`
	Direction    Direction `json:"direction"`
	SourceID     string    `json:"source_id"`
	Action       string    `json:"action,omitempty"` // "" sync, "delete"
	Replica      string    `json:"replica"`
	Previous     *string   `json:"previous,omitempty"`
	Status       string    `json:"status"`
	// Attempts counts tries since a person last retried the event (the
	// engine's retry budget); TotalAttempts counts every try (issue 19).
	Attempts      int       `json:"attempts"`
	TotalAttempts int       `json:"total_attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error"`
	Log           string    `json:"log"`
	// SourceFields and SourceUpdatedAt are the source entity as queued: its
	// fields become the source's base once the event is applied.
	SourceFields    *string    `json:"-"`
	SourceUpdatedAt *time.Time `json:"source_updated_at,omitempty"`
	// Conflicts (JSON list) wait for a person; Resolution (JSON object
	// field → {"take": "source"|"target"|"value", "value": …}) is their answer.
	Conflicts  *string `json:"conflicts,omitempty"`
	Resolution *string `json:"resolution,omitempty"`
	// UnlinkedPair is set when the event's pair was unlinked through the
	// API: "twin 7 (a 12, b ENG-4)"; TwinID then names a twin that is gone.
	UnlinkedPair *string `json:"unlinked_pair,omitempty"`
	// Partial (JSON {"target_id", "applied": [fields], "refused": [fields]})
	// is what an attempt refused part-way had written to the target; the
	// retry sends only what is left (engine/partial.go).
	Partial   *string   `json:"partial,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// AuditEntry records who did what.
type AuditEntry struct {
	ID           int64     `gorm:"primaryKey" json:"id"`
	At           time.Time `json:"at"`
	Actor        string    `json:"actor"`
	TeamID       *int64    `json:"team_id,omitempty"`
	Action       string    `json:"action"`
	ConnectionID *int64    `json:"connection_id,omitempty"`
	TwinID       *int64    `json:"twin_id,omitempty"`
	EventID      *int64    `json:"event_id,omitempty"`
	Detail       string    `json:"detail"`
}

// TableName maps AuditEntry to its table.
func (AuditEntry) TableName() string { return "audit_log" }

// Backfill is a "sync existing" job over one side of a connection.
type Backfill struct {
	ID           int64     `gorm:"primaryKey" json:"id"`
	ConnectionID int64     `json:"connection_id"`
	Side         Side      `json:"side"`
	Cursor       string    `json:"-"`
	Scanned      int64     `json:"scanned"`
	Queued       int64     `json:"queued"`
	Status       string    `json:"status"` // running, done, failed
	LastError    string    `json:"last_error"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}
