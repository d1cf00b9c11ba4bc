package sandbox

import (
	"context"
	"fmt"

	"github.com/duplexsync/duplex/scripting"
)

// MatchMany evaluates one trigger for many inputs of one connection, up to
// MaxBatch runs per message: a page of a backfill crosses to the workers in
// a few messages instead of one per entity. errs[i] is run i's own error;
// err is set only when the runs did not happen (stopped, ctx ended).
func (p *Pool) MatchMany(ctx context.Context, t *scripting.Trigger, vars []map[string]any, meta scripting.Meta) (match []bool, errs []error, err error) {
	match, errs = make([]bool, len(vars)), make([]error, len(vars))
	if t == nil || t.Env() == nil {
		for i := range match {
			match[i] = true
		}
		return match, errs, nil
	}
	mk := func() *code { return &code{Src: t.Source(), Env: t.Env()} }
	key := p.key(t, mk)
	calls := make([]*call, len(vars))
	for i, v := range vars {
		c := &call{code: mk}
		c.req = runReq{Op: opMatch, Key: key, Meta: meta}
		c.setArgs(v)
		p.deadline(c, meta)
		calls[i] = c
	}
	if err := p.doMany(ctx, fairKey(meta), calls); err != nil {
		return nil, nil, err
	}
	for i, c := range calls {
		match[i], errs[i] = c.res.Bool, c.err
	}
	return match, errs, nil
}

// OutgoingMany runs one outgoing script for many entities of one
// connection (previous[i] and metas[i] belong to entities[i]), up to
// MaxBatch runs per message. errs[i] is run i's own error; err is set only
// when the runs did not happen.
func (p *Pool) OutgoingMany(ctx context.Context, s *scripting.Script, entities, previous []map[string]any, metas []scripting.Meta) (res []scripting.OutgoingResult, errs []error, err error) {
	if len(previous) != len(entities) || len(metas) != len(entities) {
		return nil, nil, fmt.Errorf("sandbox: %d entities, %d previous, %d metas", len(entities), len(previous), len(metas))
	}
	calls := make([]*call, len(entities))
	for i := range entities {
		c := &call{}
		p.prepareScript(c, opOutgoing, s, metas[i], entities[i], previous[i], nil)
		calls[i] = c
	}
	conn := ""
	if len(metas) > 0 {
		conn = fairKey(metas[0])
	}
	if err := p.doMany(ctx, conn, calls); err != nil {
		return nil, nil, err
	}
	res, errs = make([]scripting.OutgoingResult, len(calls)), make([]error, len(calls))
	for i, c := range calls {
		res[i], errs[i] = scripting.OutgoingResult{Replica: c.res.out, Log: c.res.Log}, c.err
	}
	return res, errs, nil
}

// doMany sends calls on the sync lane in messages of at most MaxBatch runs,
// one after the other, under the connection's bound like any other run.
func (p *Pool) doMany(ctx context.Context, conn string, calls []*call) error {
	for len(calls) > 0 {
		n := min(len(calls), p.opts.MaxBatch)
		if err := p.do(ctx, p.sync, conn, calls[:n]); err != nil {
			return err
		}
		calls = calls[n:]
	}
	return nil
}
