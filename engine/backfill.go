package engine

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/engine/store"
)

// BackfillOnce advances every running "sync existing" job by one page: each
// entity of the job's side goes through the same intake as a change (trigger,
// echo check, outgoing script, replica comparison), so entities already in
// sync queue nothing and a job can be repeated safely. The job's cursor moves
// in the transaction that queues its events, so a restart resumes where it
// stopped. It returns how many jobs moved.
func (e *Engine) BackfillOnce(ctx context.Context) (int, error) {
	jobs, err := e.st.ClaimBackfills(ctx, e.claim()) // the jobs no other process holds
	if err != nil {
		return 0, err
	}
	for i := range jobs {
		if err := e.backfillPage(ctx, &jobs[i]); err != nil {
			if ctx.Err() != nil {
				return i, ctx.Err()
			}
			jobs[i].Status, jobs[i].LastError = "failed", err.Error()
			if err := e.st.SaveBackfill(ctx, &jobs[i]); err != nil {
				return i, err
			}
		}
	}
	if len(jobs) > 0 {
		e.Wake()
	}
	return len(jobs), nil
}

func (e *Engine) backfillPage(ctx context.Context, job *store.Backfill) error {
	p, err := e.planByID(ctx, job.ConnectionID)
	if err != nil {
		return err
	}
	if e.quarantined(p) {
		return nil // waits, unmoved, until the connection is resumed
	}
	src, err := e.system(ctx, p.conn.SystemID(job.Side))
	if err != nil {
		return err
	}
	readAt := e.opts.Now()
	page, err := src.conn.Changes(ctx, job.Cursor, e.opts.PageSize)
	if err != nil {
		return fmt.Errorf("read %s: %w", job.Side, err)
	}
	twins, err := e.twinsOfPage(ctx, []use{{p, job.Side}}, page.Entities)
	if err != nil {
		return err
	}
	var cands []candidate
	for _, ent := range page.Entities {
		if c, ok := e.intake(ctx, p, job.Side, ent, twins); ok {
			c.readAt = readAt
			cands = append(cands, c)
		}
	}
	return e.st.Tx(ctx, func(tx *store.Store) error {
		n, err := commit(ctx, tx, cands)
		if err != nil {
			return err
		}
		job.Scanned += int64(len(page.Entities))
		job.Queued += int64(n)
		if page.Cursor != "" {
			job.Cursor = page.Cursor
		}
		if !page.More {
			job.Status = "done"
		}
		return tx.SaveBackfill(ctx, job)
	})
}

// Pair is an entity of side a and one of side b that share a key.
type Pair struct{ A, B string }

// MatchExisting reads both systems and lists the entities that share a key
// (a field, or "id"/"key", on each side), writing nothing: the API links
// them through internal/service, with its audit entry.
func (e *Engine) MatchExisting(ctx context.Context, connID int64, aField, bField string) ([]Pair, error) {
	p, err := e.planByID(ctx, connID)
	if err != nil {
		return nil, err
	}
	keyed := func(side store.Side, field string) (map[string]string, error) {
		sys, err := e.system(ctx, p.conn.SystemID(side))
		if err != nil {
			return nil, err
		}
		out := map[string]string{}
		cursor := ""
		for {
			page, err := sys.conn.Changes(ctx, cursor, e.opts.PageSize)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", side, err)
			}
			for _, ent := range page.Entities {
				if k := str(triggerVars(ent)[field]); k != "" {
					out[k] = ent.ID
				}
			}
			if !page.More || page.Cursor == "" {
				return out, nil
			}
			cursor = page.Cursor
		}
	}
	as, err := keyed(store.SideA, aField)
	if err != nil {
		return nil, err
	}
	bs, err := keyed(store.SideB, bField)
	if err != nil {
		return nil, err
	}
	var out []Pair
	for k, aID := range as {
		if bID, ok := bs[k]; ok {
			out = append(out, Pair{A: aID, B: bID})
		}
	}
	return out, nil
}
