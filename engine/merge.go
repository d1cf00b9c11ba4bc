package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/duplexsync/duplex/engine/store"
)

// Conflict policies.
const (
	PolicyA      = "a"      // side a's value wins
	PolicyB      = "b"      // side b's value wins
	PolicyNewest = "newest" // the side whose entity changed last wins
	PolicyManual = "manual" // a person chooses; the event waits
)

// Policy decides true conflicts: a field changed on both sides since the
// last sync. Fields overrides Default per target field name.
type Policy struct {
	Default string            `json:"default"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// ParsePolicy reads a connection's conflict policy; empty means side a wins.
func ParsePolicy(s string) (Policy, error) {
	p := Policy{Default: PolicyA}
	if s != "" {
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			return p, fmt.Errorf("conflict policy: %w", err)
		}
	}
	if p.Default == "" {
		p.Default = PolicyA
	}
	for field, v := range map[string]string{"default": p.Default} {
		if !validPolicy(v) {
			return p, fmt.Errorf("conflict policy %s: %q is not a, b, newest or manual", field, v)
		}
	}
	for field, v := range p.Fields {
		if !validPolicy(v) {
			return p, fmt.Errorf("conflict policy for field %q: %q is not a, b, newest or manual", field, v)
		}
	}
	return p, nil
}

func validPolicy(s string) bool {
	return s == PolicyA || s == PolicyB || s == PolicyNewest || s == PolicyManual
}

func (p Policy) forField(f string) string {
	if v, ok := p.Fields[f]; ok {
		return v
	}
	return p.Default
}

// Conflict is a field both sides changed since the last sync, kept on the
// event for a person when the policy is manual.
type Conflict struct {
	Field    string `json:"field"`
	Base     any    `json:"base"`     // the target's value at the last sync
	Target   any    `json:"target"`   // the target's value now
	Incoming any    `json:"incoming"` // what the source's change asks for
}

// Resolution is a person's answer for one conflicting field.
type Resolution struct {
	Take  string `json:"take"` // "source", "target" or "value"
	Value any    `json:"value,omitempty"`
}

// mergeInput is everything the field-level merge looks at.
type mergeInput struct {
	desired     map[string]any // target fields after the incoming script on this replica
	prevDesired map[string]any // ... on the previous replica (nil: unknown, every field counts as changed)
	local       map[string]any // the target's fields now
	base        map[string]any // the target's fields at the last sync (nil: never synced)
	policy      Policy
	src         store.Side
	srcTime     time.Time // when the source entity changed
	localTime   time.Time // when the target entity changed
	resolution  map[string]Resolution
	own         map[string]bool // fields whose target value an unrecorded attempt of this event wrote (ownUnrecorded)
}

// merge computes the patch for the target, field by field:
//   - a field the source did not change (same desired value for the previous
//     replica) is left alone, so a concurrent edit of it on the target survives;
//   - a field the source changed flows if the target did not change it since
//     the last sync;
//   - a field both changed is a conflict, settled by the policy (or the
//     person's resolution); manual conflicts are returned and nothing is written.
func merge(in mergeInput) (map[string]any, []Conflict) {
	out := map[string]any{}
	var conflicts []Conflict
	keys := make([]string, 0, len(in.desired))
	for k := range in.desired {
		keys = append(keys, k)
	}
	sort.Strings(keys) // stable conflict lists
	for _, k := range keys {
		v := in.desired[k]
		cur, has := in.local[k]
		if !has && v == nil || has && sameValue(cur, v) {
			continue
		}
		if in.prevDesired != nil && !in.own[k] { // Duplex's own value goes where the source is now
			if pv, ok := in.prevDesired[k]; ok && sameValue(pv, v) {
				continue // the source did not change this field
			}
		}
		baseV, inBase := in.base[k]
		if in.base == nil || !inBase || sameValue(cur, baseV) {
			out[k] = v // only the source changed it
			continue
		}
		// Both sides changed k since the last sync.
		if r, ok := in.resolution[k]; ok {
			switch r.Take {
			case "source":
				out[k] = v
			case "value":
				out[k] = r.Value
			}
			continue
		}
		switch in.policy.forField(k) {
		case PolicyManual:
			conflicts = append(conflicts, Conflict{Field: k, Base: baseV, Target: cur, Incoming: v})
		case PolicyNewest:
			if !in.srcTime.Before(in.localTime) {
				out[k] = v
			}
		case string(in.src):
			out[k] = v
		}
	}
	if len(conflicts) > 0 {
		return nil, conflicts
	}
	return out, nil
}

// Lifecycle is a connection's lifecycle choices.
type Lifecycle struct {
	// OnUnmatch: when a linked entity stops matching the trigger of the side
	// it came from, "keep" syncing (the default) or "unlink" the twin.
	OnUnmatch string `json:"on_unmatch,omitempty"`
	// OnDelete: when a linked entity is deleted, "unlink" only (the
	// default), "delete" its counterpart, or "close" it by writing the
	// fields in Close for that side (for example {"b": {"state": "closed"}}).
	OnDelete string                    `json:"on_delete,omitempty"`
	Close    map[string]map[string]any `json:"close,omitempty"`
	// ScriptTimeoutMS is this connection's script deadline (0: the
	// runner's default); at most MaxScriptTimeoutMS (CheckLifecycle).
	ScriptTimeoutMS int `json:"script_timeout_ms,omitempty"`
	// SyncBackOnCreate sends an entity Duplex created back to the side it
	// came from once, on its first read, so that side learns what only the
	// new entity knows (its id, URL, initial status). Without it the first
	// read is this write's echo and nothing flows back until a person edits.
	SyncBackOnCreate bool `json:"sync_back_on_create,omitempty"`
	// AttachmentMaxBytes is the largest file this connection copies (0:
	// DefaultAttachmentMaxBytes, 100 MiB). A file over it fails its event
	// before anything is written.
	AttachmentMaxBytes int64 `json:"attachment_max_bytes,omitempty"`
	// QuarantineHits script runs that hit a limit within QuarantineWindowS
	// seconds pause the connection (0: the engine's, 3 in 10 minutes; -1:
	// never); see quarantine.go.
	QuarantineHits    int `json:"quarantine_hits,omitempty"`
	QuarantineWindowS int `json:"quarantine_window_s,omitempty"`
}

func (l Lifecycle) scriptTimeout() time.Duration {
	return time.Duration(l.ScriptTimeoutMS) * time.Millisecond
}

// ParseLifecycle reads a connection's options; empty means the defaults.
func ParseLifecycle(s string) (Lifecycle, error) {
	var o Lifecycle
	if s != "" {
		if err := json.Unmarshal([]byte(s), &o); err != nil {
			return o, fmt.Errorf("connection options: %w", err)
		}
	}
	switch o.OnUnmatch {
	case "":
		o.OnUnmatch = "keep"
	case "keep", "unlink":
	default:
		return o, fmt.Errorf("on_unmatch must be keep or unlink, got %q", o.OnUnmatch)
	}
	if o.AttachmentMaxBytes < 0 {
		return o, fmt.Errorf("attachment_max_bytes must not be negative")
	}
	if o.ScriptTimeoutMS < 0 {
		return o, fmt.Errorf("script_timeout_ms must not be negative")
	}
	if o.QuarantineHits < -1 || o.QuarantineWindowS < 0 {
		return o, fmt.Errorf("quarantine_hits must be -1 (never), 0 (the default) or more, and quarantine_window_s not negative")
	}
	switch o.OnDelete {
	case "":
		o.OnDelete = "unlink"
	case "unlink", "delete":
	case "close":
		if len(o.Close["a"]) == 0 && len(o.Close["b"]) == 0 {
			return o, fmt.Errorf(`on_delete "close" needs the fields to write, for example "close": {"b": {"state": "closed"}}`)
		}
	default:
		return o, fmt.Errorf("on_delete must be unlink, delete or close, got %q", o.OnDelete)
	}
	return o, nil
}
