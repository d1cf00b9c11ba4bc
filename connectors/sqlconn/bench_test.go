package sqlconn

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
)

const (
	benchRows     = 2000
	benchComments = 1000
	benchPage     = 100
)

// benchFixture fills a SQLite table with benchRows rows, a few timestamps
// shared by many rows, and benchComments comments.
func benchFixture(b testing.TB) *fixture {
	f := newFixture(b, backends[0])
	tx, err := f.raw.Begin()
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range benchRows {
		at := base.Add(time.Duration(i/4) * time.Millisecond).Format(sqliteTime)
		if _, err := tx.Exec("INSERT INTO "+f.items+" (title, points, estimate, done, due, labels, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
			fmt.Sprint("row ", i), float64(i)/3, i, i%2, "2024-05-06T07:08:09Z", "todev,urgent", at); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchComments {
		at := base.Add(time.Duration(i) * time.Millisecond).Format(sqliteTime)
		if _, err := tx.Exec("INSERT INTO "+f.comments+" (item_id, author, body, created_at) VALUES (?, ?, ?, ?)",
			1+(i*7)%benchRows, "ann", "a comment", at); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	return f
}

// BenchmarkChangesPage reads pages of 100 changed entities, each with its
// comments, round and round the table.
func BenchmarkChangesPage(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	cursor := ""
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := f.conn.Changes(ctx, cursor, benchPage)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Entities) == 0 {
			b.Fatal("empty page")
		}
		cursor = p.Cursor
		if !p.More {
			cursor = ""
		}
	}
}

// BenchmarkUpdate changes two fields of a row and reads it back.
func BenchmarkUpdate(b *testing.B) {
	f := benchFixture(b)
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		i++
		id := fmt.Sprint(1 + i%benchRows)
		if _, err := f.conn.Update(ctx, id, map[string]any{"title": fmt.Sprint("t", i), "estimate": float64(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestConcurrentUse writes from several goroutines while another reads
// Changes, as the engine does; run it with -race.
func TestConcurrentUse(t *testing.T) {
	f := newFixture(t, backends[0])
	ctx := context.Background()
	var created []connectors.Entity
	for i := range 8 {
		created = append(created, f.create(t, fmt.Sprint("r", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		wg.Go(func() {
			for i := range 20 {
				e := created[(w+i)%len(created)]
				if _, err := f.conn.Update(ctx, e.ID, map[string]any{"estimate": float64(i)}); err != nil {
					errs <- err
					return
				}
				if i%5 == 0 {
					if _, err := f.conn.AddComment(ctx, e.ID, connectors.Comment{Body: "c"}); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Go(func() {
		cursor := ""
		for range 30 {
			p, err := f.conn.Changes(ctx, cursor, 3)
			if err != nil {
				errs <- err
				return
			}
			cursor = p.Cursor
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, _ := f.drain(t, "", 5)
	if len(all) < len(created) {
		t.Errorf("final drain saw %d entities, want at least %d", len(all), len(created))
	}
}
