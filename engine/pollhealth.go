package engine

import (
	"context"
	"errors"
)

// pollHealth records in the store whether a system's polls succeed (for
// alerts: a system unreachable). It writes on every failure and only on the
// first success after a failure (or after start), so a healthy system costs
// one write per process start, not one per poll.
type pollHealth struct {
	e        *Engine
	systemID int64
	known    bool // the store says what the last poll did
	failing  bool
}

func (h *pollHealth) note(ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return // stopping: not the system's fault
	}
	if err == nil {
		if h.known && !h.failing {
			return
		}
		if werr := h.e.st.RecordPollOK(ctx, h.systemID, h.e.opts.Now()); werr != nil {
			h.e.log.Warn("record poll health", "system", h.systemID, "err", werr)
			return
		}
		h.known, h.failing = true, false
		return
	}
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	if werr := h.e.st.RecordPollFailure(ctx, h.systemID, msg, h.e.opts.Now()); werr != nil {
		h.e.log.Warn("record poll health", "system", h.systemID, "err", werr)
		return
	}
	h.known, h.failing = true, true
}
