package engine

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/duplexsync/duplex/connectors"
)

// limited keeps Duplex within a system's request budget: every call first
// takes a token from the system's bucket, waiting (context-aware) when it is
// empty. Polling and writes share the budget, as they share the remote API's.
type limited struct {
	next connectors.Connector
	lim  *rate.Limiter
}

// withLimit wraps conn when the system has a budget.
func withLimit(conn connectors.Connector, perSecond float64, burst int) connectors.Connector {
	if perSecond <= 0 {
		return conn
	}
	if burst < 1 {
		burst = 1
	}
	return &limited{next: conn, lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

func (l *limited) wait(ctx context.Context) error {
	if err := l.lim.Wait(ctx); err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	return nil
}

func (l *limited) Changes(ctx context.Context, cursor string, limit int) (connectors.Page, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Page{}, err
	}
	return l.next.Changes(ctx, cursor, limit)
}

func (l *limited) Get(ctx context.Context, id string) (connectors.Entity, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, err
	}
	return l.next.Get(ctx, id)
}

func (l *limited) Create(ctx context.Context, fields map[string]any) (connectors.Entity, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, err
	}
	return l.next.Create(ctx, fields)
}

func (l *limited) Update(ctx context.Context, id string, fields map[string]any) (connectors.Entity, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, err
	}
	return l.next.Update(ctx, id, fields)
}

func (l *limited) AddComment(ctx context.Context, id string, c connectors.Comment) (connectors.Comment, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Comment{}, err
	}
	return l.next.AddComment(ctx, id, c)
}

func (l *limited) Describe(ctx context.Context) (connectors.Schema, error) {
	return l.next.Describe(ctx)
}

func (l *limited) Close() error { return l.next.Close() }

// The optional capabilities pass through the wrapper; when the wrapped
// connector lacks one, the call behaves as if the capability were absent
// (no correlation) or fails clearly (no delete).

func (l *limited) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, err
	}
	if c, ok := l.next.(connectors.Correlating); ok {
		return c.CreateCorrelated(ctx, key, fields)
	}
	return l.next.Create(ctx, fields)
}

func (l *limited) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	c, ok := l.next.(connectors.Correlating)
	if !ok {
		return connectors.Entity{}, false, nil
	}
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, false, err
	}
	return c.FindCorrelated(ctx, key)
}

func (l *limited) Delete(ctx context.Context, id string) error {
	d, ok := l.next.(connectors.Deleter)
	if !ok {
		return fmt.Errorf("%w: this connector cannot delete", connectors.ErrInvalid)
	}
	if err := l.wait(ctx); err != nil {
		return err
	}
	return d.Delete(ctx, id)
}
