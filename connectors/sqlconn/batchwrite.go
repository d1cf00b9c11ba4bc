package sqlconn

import (
	"context"
	"database/sql"
	"strings"

	"github.com/duplexsync/duplex/connectors"
)

var _ connectors.BatchWriter = (*conn)(nil)

// WriteMany makes a batch's creates and updates in one transaction
// (connectors.BatchWriter): one commit, so one fsync on SQLite, instead of
// one per row. Each write runs under its own savepoint: one that fails is
// rolled back alone and reports its error, the others land. A batch of one
// is written as Create or Update writes it. A create whose
// key an earlier attempt stored is found, not made again (the keys of the
// whole batch in one query, before the transaction). If the transaction
// cannot begin or commit, every write in it reports that error.
func (c *conn) WriteMany(ctx context.Context, ws []connectors.Write) []connectors.WriteResult {
	out := make([]connectors.WriteResult, len(ws))
	todo := c.findKeys(ctx, ws, out)
	switch len(todo) {
	case 0:
		return out
	case 1: // a write alone: Create's or Update's own statements, no savepoint
		i := todo[0]
		out[i].Entity, out[i].Err = c.writeAlone(ctx, ws[i])
		return out
	}
	if err := c.writeTx(ctx, ws, todo, out); err != nil {
		for _, i := range todo {
			if out[i].Err == nil {
				out[i] = connectors.WriteResult{Err: err}
			}
		}
		return out
	}
	if !c.comments {
		return out
	}
	// A row's comments as Update and Get give them (a new row has none,
	// unless it took a deleted row's id): one query for the batch.
	found := make(map[string]*connectors.Entity, len(todo))
	ids := make([]string, 0, len(todo))
	for _, i := range todo {
		if out[i].Err == nil {
			found[out[i].Entity.ID] = &out[i].Entity
			ids = append(ids, out[i].Entity.ID)
		}
	}
	if len(ids) > 0 {
		if err := c.commentsOfMany(ctx, ids, found); err != nil {
			for _, i := range todo {
				if out[i].Err == nil {
					out[i] = connectors.WriteResult{Err: err} // written: a retry finds it (key) or writes the same
				}
			}
		}
	}
	return out
}

// findKeys looks the keys of the batch's correlated creates up in one
// query and fills in the results of those found (with their comments, as
// Get reads them). It returns the indexes of the writes still to make.
func (c *conn) findKeys(ctx context.Context, ws []connectors.Write, out []connectors.WriteResult) []int {
	todo := make([]int, 0, len(ws))
	byKey := map[string]int{}
	var args []any
	for i, w := range ws {
		todo = append(todo, i)
		if w.ID == "" && w.Key != "" && c.corrQ != "" {
			if _, dup := byKey[w.Key]; !dup {
				args = append(args, w.Key)
			}
			byKey[w.Key] = i
		}
	}
	if len(args) == 0 {
		return todo
	}
	q := c.d.rebind("SELECT " + c.idQ + ", " + c.corrQ + " FROM " + c.tableQ + " WHERE " + c.corrQ + " IN (" +
		strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")")
	rows, err := c.db.QueryContext(ctx, q, args...)
	if err != nil {
		err = c.wrap("find correlated", err)
		for _, i := range byKey {
			out[i].Err = err
		}
		return without(todo, out)
	}
	ids := map[int]string{}
	for rows.Next() {
		var id any
		var key string
		if err := rows.Scan(&id, &key); err != nil {
			continue // not a key of ours (the column holds text): nothing found for it
		}
		if i, ok := byKey[key]; ok {
			ids[i] = idString(id)
		}
	}
	if err := rows.Err(); err != nil {
		for _, i := range byKey {
			out[i].Err = c.wrap("find correlated", err)
		}
	}
	rows.Close()
	for i, id := range ids {
		if out[i].Err == nil {
			e, err := c.Get(ctx, id)
			out[i] = connectors.WriteResult{Entity: e, Found: err == nil, Err: err}
		}
	}
	return without(todo, out)
}

// without drops from todo the writes whose result is in out already (found,
// or failed).
func without(todo []int, out []connectors.WriteResult) []int {
	kept := todo[:0]
	for _, i := range todo {
		if out[i].Err == nil && !out[i].Found {
			kept = append(kept, i)
		}
	}
	return kept
}

// writeTx makes the writes of todo in one transaction, each under its own
// savepoint, and reads each row back in it (the entity as this write left
// it, as Update does). The error is the transaction's own (begin, a
// savepoint, commit); a write's error is in its result.
func (c *conn) writeTx(ctx context.Context, ws []connectors.Write, todo []int, out []connectors.WriteResult) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return c.wrap("write batch", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, i := range todo {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT duplex_write"); err != nil {
			return c.wrap("write batch", err)
		}
		e, err := c.writeOne(ctx, tx, ws[i])
		out[i] = connectors.WriteResult{Entity: e, Err: err}
		if err != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT duplex_write"); err != nil {
				return c.wrap("write batch", err)
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT duplex_write"); err != nil {
			return c.wrap("write batch", err)
		}
	}
	return c.wrapNil("write batch", tx.Commit())
}

// writeAlone makes one write as Create (its key already looked up) or
// Update does: on PostgreSQL and MariaDB a savepoint and a transaction of
// its own would cost round trips and save no commit.
func (c *conn) writeAlone(ctx context.Context, w connectors.Write) (connectors.Entity, error) {
	if w.ID != "" {
		return c.Update(ctx, w.ID, w.Fields)
	}
	key := w.Key
	if c.corrQ == "" {
		key = ""
	}
	return c.create(ctx, key, w.Fields)
}

// writeOne is one write of a batch in tx: the row as it left it, without
// its comments.
func (c *conn) writeOne(ctx context.Context, tx *sql.Tx, w connectors.Write) (connectors.Entity, error) {
	if w.ID != "" {
		return c.updateRow(ctx, tx, w.ID, w.Fields)
	}
	key := w.Key
	if c.corrQ == "" {
		key = ""
	}
	id, err := c.insertRow(ctx, tx, key, w.Fields)
	if err != nil {
		return connectors.Entity{}, err
	}
	idv, _ := parseID(id, c.idInt)
	return c.readRow(ctx, tx, id, idv)
}

func (c *conn) wrapNil(op string, err error) error {
	if err == nil {
		return nil
	}
	return c.wrap(op, err)
}
