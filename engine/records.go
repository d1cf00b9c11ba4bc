package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/duplexsync/duplex/engine/store"
)

// scriptRecord is what the scripts produced when a twin's last event in a
// direction was applied (twins.scripts_ab and scripts_ba, migration 00026).
// With it an update runs the incoming script once, not again on the
// previous replica for the merge, and the source-base rule (uncarried) runs
// the outgoing script once for a change of one field, not twice. Each part
// names the script source and the input it is for; a part that does not
// fit (another script, another replica, a base moved by a write the other
// way) is not used, and the scripts run as before.
type scriptRecord struct {
	InID    string         `json:"i,omitempty"` // the incoming script (sourceID)
	Replica string         `json:"r,omitempty"` // digest of the replica it ran on
	Fields  map[string]any `json:"f,omitempty"` // the target fields it produced

	OutID string `json:"o,omitempty"`   // the source side's outgoing script
	Base  string `json:"b,omitempty"`   // digest of the source's base (twin.Base) ...
	Out   string `json:"out,omitempty"` // ... and the script's result on its fields, as uncarried runs it
}

// sourceID names a script's source in a record.
func sourceID(src string) string { return textDigest(src)[:16] }

func textDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// loadRecord reads the twin's record for direction d; one that cannot be
// read counts as none.
func loadRecord(t *store.Twin, d store.Direction) scriptRecord {
	var rec scriptRecord
	s := t.Scripts(d)
	if s == nil || *s == "" {
		return rec
	}
	if r, ok := fastRecord(*s); ok {
		return r
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(*s)))
	dec.UseNumber()
	if dec.Decode(&rec) != nil {
		return scriptRecord{}
	}
	normalizeNumbers(rec.Fields) // as decodeObject: values compare as the script's own output
	return rec
}

func (r scriptRecord) save(t *store.Twin, d store.Direction) {
	if enc, err := canonical(r); err == nil {
		t.SetScripts(d, enc)
	}
}

// chainPrevious makes the event's previous replica the one this twin's
// last applied event this way carried. ev.Previous is the replica the twin
// had sent when the event was queued, which is that one unless the event
// before it read its source again when applied (replicaOf: Duplex wrote to
// the source after it was queued) and so applied a newer state. Against the
// queued previous, the merge would take a change that newer state already
// applied, and then reverted on the target since (a state changed to
// in_progress and back to resolved), for no change: the cluster kill test
// lost such edits. The record says which replica was applied last; only
// when the event's previous is not that one is the store asked for it.
func (e *Engine) chainPrevious(ctx context.Context, r *applyRun) error {
	if r.ev.Previous == nil {
		return nil
	}
	r.prevDigest = textDigest(*r.ev.Previous)
	if r.rec.Replica == "" || r.ev.ID == 0 || r.rec.Replica == r.prevDigest {
		return nil
	}
	applied, err := e.st.AppliedBefore(ctx, r.ev.TwinID, r.ev.Direction, r.ev.ID)
	if err != nil {
		return err
	}
	if applied != nil && textDigest(*applied) == r.rec.Replica {
		r.ev.Previous, r.prevDigest = applied, r.rec.Replica
	}
	return nil
}

// prevDesired is what the incoming script inID produced for the previous
// replica, when the record holds it.
func (r scriptRecord) prevDesired(inID string, previous *string, digest string) (map[string]any, bool) {
	if inID == "" || r.InID != inID || previous == nil || r.Fields == nil || r.Replica != digest {
		return nil, false
	}
	return r.Fields, true
}

// outFor is the outgoing script outID's recorded result on the source's
// base oldBase (the twin's stored string), when the record holds it.
func (r scriptRecord) outFor(outID string, oldBase *string) (string, bool) {
	if outID == "" || r.OutID != outID || oldBase == nil || r.Out == "" || r.Base != textDigest(*oldBase) {
		return "", false
	}
	return r.Out, true
}

// recordScripts keeps what this apply's scripts produced on the twin:
// the incoming script's fields for an update (a first sync's run sees no
// target entity and FirstSync, so it is not what a rerun would give), and
// the outgoing result for the source's new base when uncarried knows it.
func recordScripts(r *applyRun, s settled, out string) {
	rec := r.rec
	// The replica applied is recorded on every apply (chainPrevious checks
	// the next event's previous against it); the script's fields only for
	// an update.
	rec.InID, rec.Replica, rec.Fields = "", textDigest(r.ev.Replica), nil
	if !r.first && r.p.sides[r.dst].inID != "" {
		rec.InID, rec.Fields = r.p.sides[r.dst].inID, r.fields
	}
	if s.srcBase != nil {
		rec.OutID, rec.Base, rec.Out = "", "", ""
		if out != "" {
			rec.OutID, rec.Base, rec.Out = r.p.sides[r.src].outID, textDigest(*s.srcBase), out
		}
	}
	rec.save(&r.twin, r.ev.Direction)
}
