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
	l := &limited{next: conn, lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
	if c, ok := conn.(connectors.Correlating); ok {
		return limitedCorrelating{l, c}
	}
	return l
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

// limitedCorrelating keeps the optional Correlating methods visible through
// the wrapper.
type limitedCorrelating struct {
	*limited
	corr connectors.Correlating
}

func (l limitedCorrelating) CreateCorrelated(ctx context.Context, key string, fields map[string]any) (connectors.Entity, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, err
	}
	return l.corr.CreateCorrelated(ctx, key, fields)
}

func (l limitedCorrelating) FindCorrelated(ctx context.Context, key string) (connectors.Entity, bool, error) {
	if err := l.wait(ctx); err != nil {
		return connectors.Entity{}, false, err
	}
	return l.corr.FindCorrelated(ctx, key)
}
