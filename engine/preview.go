package engine

import (
	"context"
	"fmt"
	"strconv"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/scripting"
)

// TriggerPreview is how many of a system's entities a trigger matches, read
// from the start of the system's change feed (at most the limit asked for).
type TriggerPreview struct {
	Scanned   int                 `json:"scanned"`
	Matched   int                 `json:"matched"`
	Truncated bool                `json:"truncated"` // more entities exist than were scanned
	Sample    []connectors.Entity `json:"sample"`    // the first few matches, without comments
	Errors    int                 `json:"errors"`    // entities the trigger failed on
	LastError string              `json:"last_error,omitempty"`
}

// PreviewTrigger compiles src against the system's fields and evaluates it on
// up to limit entities of the system, writing nothing. A compile error is a
// *scripting.Error with line and column.
func (e *Engine) PreviewTrigger(ctx context.Context, systemID int64, src string, limit, sample int) (TriggerPreview, error) {
	out := TriggerPreview{Sample: []connectors.Entity{}}
	trig, err := e.compileTrigger(ctx, systemID, src)
	if err != nil {
		return out, err
	}
	st, err := e.system(ctx, systemID)
	if err != nil {
		return out, err
	}
	cursor := ""
	seen := map[string]bool{} // a feed can name an entity twice (its row, then a comment)
	// Its own place in the interactive lane: previews of another team's
	// system never wait or travel with these.
	meta := scripting.Meta{Key: "preview of system " + strconv.FormatInt(systemID, 10)}
	for out.Scanned < limit {
		page, err := st.conn.Changes(ctx, cursor, min(100, limit-out.Scanned))
		if err != nil {
			return out, fmt.Errorf("preview: read %q: %w", st.sys.Name, err)
		}
		for _, ent := range page.Entities {
			if ent.Deleted || seen[ent.ID] {
				continue
			}
			seen[ent.ID] = true
			out.Scanned++
			ok, err := e.interactive().Match(ctx, trig, triggerVars(ent), meta)
			if err != nil {
				out.Errors++
				out.LastError = err.Error()
				continue
			}
			if ok {
				out.Matched++
				if len(out.Sample) < sample {
					ent.Comments = nil
					out.Sample = append(out.Sample, ent)
				}
			}
		}
		if page.Cursor == "" || len(page.Entities) == 0 || !page.More {
			return out, nil
		}
		cursor = page.Cursor
	}
	// Limit reached: say whether anything is left unread.
	if page, err := st.conn.Changes(ctx, cursor, 1); err == nil && len(page.Entities) > 0 {
		out.Truncated = true
	}
	return out, nil
}
