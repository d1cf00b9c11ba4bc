package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
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
	// The connection's queue holds at most about BackfillAhead events of
	// the backfill: a live change queued meanwhile waits behind no more,
	// and memory holds a page, never the whole side. With nothing queued
	// (nothing live waits) the page is BackfillPage; with events waiting it
	// tops the queue up, PageSize at least.
	queued, err := e.st.QueuedEvents(ctx, job.ConnectionID, e.opts.BackfillAhead)
	if err != nil {
		return err
	}
	if queued >= e.opts.BackfillAhead {
		return nil // the worker is behind: live changes first
	}
	size := max(e.opts.PageSize, min(e.opts.BackfillPage, e.opts.BackfillAhead-queued))
	src, err := e.system(ctx, p.conn.SystemID(job.Side))
	if err != nil {
		return err
	}
	readAt := e.opts.Now()
	page, err := readBackfill(ctx, src.conn, job.Cursor, size)
	if err != nil {
		return fmt.Errorf("read %s: %w", job.Side, err)
	}
	twins, err := e.twinsOfPage(ctx, []use{{p, job.Side}}, page.Entities)
	if err != nil {
		return err
	}
	cands, err := e.intakePage(ctx, p, job.Side, page.Entities, twins)
	if err != nil {
		return err
	}
	for i := range cands {
		cands[i].readAt = readAt
	}
	return e.st.Tx(ctx, func(tx *store.Store) error {
		n, err := commit(ctx, tx, cands, nil)
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

// scanPrefix marks a backfill cursor as a pageScanner's (the job's cursor
// column holds either kind).
const scanPrefix = "scan:"

// pageScanner is a connector's read of all its entities in a stable order
// (sqlconn: by id), cheaper for a backfill than Changes, which orders by
// time.
type pageScanner interface {
	Scan(ctx context.Context, cursor string, limit int) (connectors.Page, error)
}

// readBackfill reads a backfill's next page: through the connector's Scan
// when it has one (the job started with it), else through Changes.
func readBackfill(ctx context.Context, conn connectors.Connector, cursor string, size int) (connectors.Page, error) {
	next, lim := conn, (*limited)(nil)
	if l, ok := conn.(*limited); ok {
		next, lim = l.next, l
	}
	sc, ok := next.(pageScanner)
	if !ok || (cursor != "" && !strings.HasPrefix(cursor, scanPrefix)) {
		if strings.HasPrefix(cursor, scanPrefix) {
			// The connector lost its Scan (settings changed): start over
			// through Changes; entities already in sync queue nothing.
			cursor = ""
		}
		return conn.Changes(ctx, cursor, size)
	}
	if lim != nil {
		if err := lim.wait(ctx); err != nil {
			return connectors.Page{}, err
		}
	}
	page, err := sc.Scan(ctx, strings.TrimPrefix(cursor, scanPrefix), size)
	if page.Cursor != "" {
		page.Cursor = scanPrefix + page.Cursor
	}
	return page, err
}

// pageScripts is the optional capability of the script executor to run
// many runs of one script in few crossings (sandbox.Pool): a backfill's
// page sends its triggers, then its outgoing scripts, together.
type pageScripts interface {
	MatchMany(ctx context.Context, t *scripting.Trigger, vars []map[string]any, meta scripting.Meta) ([]bool, []error, error)
	OutgoingMany(ctx context.Context, s *scripting.Script, entities, previous []map[string]any, metas []scripting.Meta) ([]scripting.OutgoingResult, []error, error)
}

// intakePage is intake for a page of one side of one connection: the same
// steps per entity, its triggers run as one batch and its outgoing scripts
// as another. The candidates come in the entities' order.
func (e *Engine) intakePage(ctx context.Context, p *plan, side store.Side, ents []connectors.Entity, twins pageTwins) ([]candidate, error) {
	ps, ok := e.opts.Runner.(pageScripts)
	if !ok {
		var out []candidate
		for _, ent := range ents {
			if c, ok := e.intake(ctx, p, side, ent, twins); ok {
				out = append(out, c)
			}
		}
		return out, nil
	}
	steps := make([]intakeStep, len(ents))
	done, keep := make([]bool, len(ents)), make([]bool, len(ents))
	var todo []int
	var vars []map[string]any
	for i, ent := range ents {
		if steps[i], done[i], keep[i] = e.intakeHead(p, side, ent, twins); !done[i] {
			todo, vars = append(todo, i), append(vars, triggerVars(ent))
		}
	}
	if len(todo) > 0 {
		match, errs, err := ps.MatchMany(ctx, p.sides[side].trigger, vars, steps[todo[0]].triggerMeta(p))
		if err != nil {
			return nil, fmt.Errorf("trigger: %w", err)
		}
		for k, i := range todo {
			done[i], keep[i] = e.intakeMatched(ctx, p, &steps[i], ents[i], match[k], errs[k])
		}
	}
	if err := e.outgoingPage(ctx, ps, p, ents, steps, done, keep); err != nil {
		return nil, err
	}
	out := make([]candidate, 0, len(ents))
	for i := range ents {
		if keep[i] {
			out = append(out, steps[i].c)
		}
	}
	return out, nil
}

// outgoingPage runs the outgoing script, as one batch, for the entities
// of a page whose intake is not done, and finishes their intake.
func (e *Engine) outgoingPage(ctx context.Context, ps pageScripts, p *plan, ents []connectors.Entity, steps []intakeStep, done, keep []bool) error {
	var todo []int
	var inputs, previous []map[string]any
	var metas []scripting.Meta
	for i := range ents {
		if !done[i] {
			todo = append(todo, i)
			inputs, previous = append(inputs, scriptEntity(ents[i])), append(previous, steps[i].previous)
			metas = append(metas, steps[i].outgoingMeta(p))
		}
	}
	if len(todo) == 0 {
		return nil
	}
	side := steps[todo[0]].c.side
	res, errs, err := ps.OutgoingMany(ctx, p.sides[side].outgoing, inputs, previous, metas)
	if err != nil {
		return fmt.Errorf("outgoing: %w", err)
	}
	for k, i := range todo {
		steps[i].c, keep[i] = e.intakeTail(ctx, p, &steps[i], ents[i], res[k], errs[k])
		done[i] = true
	}
	return nil
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
