package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Driver errors are classified by their codes: the same text in another
// error (a remote's message quoted in ours) is not a violation.
func TestDriverErrorsByCode(t *testing.T) {
	for _, tc := range []struct {
		name              string
		err               error
		unique, retryable bool
	}{
		{"pg unique", fmt.Errorf("create: %w", &pgconn.PgError{Code: "23505"}), true, false},
		{"pg deadlock", fmt.Errorf("claim: %w", &pgconn.PgError{Code: "40P01"}), false, true},
		{"pg serialization", &pgconn.PgError{Code: "40001"}, false, true},
		{"pg foreign key", &pgconn.PgError{Code: "23503"}, false, false},
		{"sqlite unique", fmt.Errorf("create: %w", sqlite3.Error{Code: sqlite3.ErrConstraint, ExtendedCode: sqlite3.ErrConstraintUnique}), true, false},
		{"sqlite primary key", sqlite3.Error{Code: sqlite3.ErrConstraint, ExtendedCode: sqlite3.ErrConstraintPrimaryKey}, true, false},
		{"sqlite foreign key", sqlite3.Error{Code: sqlite3.ErrConstraint, ExtendedCode: sqlite3.ErrConstraintForeignKey}, false, false},
		{"sqlite busy", fmt.Errorf("save: %w", sqlite3.Error{Code: sqlite3.ErrBusy}), false, true},
		{"sqlite locked", sqlite3.Error{Code: sqlite3.ErrLocked}, false, true},
		{"text only", errors.New(`remote said: UNIQUE constraint failed; SQLSTATE 23505 duplicate key value; SQLSTATE 40P01`), false, false},
		{"nil", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err != nil && isUniqueViolation(tc.err) != tc.unique {
				t.Errorf("unique: %v, want %v", !tc.unique, tc.unique)
			}
			if Retryable(tc.err) != tc.retryable {
				t.Errorf("retryable: %v, want %v", !tc.retryable, tc.retryable)
			}
		})
	}
}

// A real SQLite busy error (another connection holds the write lock past
// the busy timeout) is retryable, and a real unique violation is ErrConflict.
func TestSQLiteErrorsClassified(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "duplex.db")
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := Open(ctx, path+"?_busy_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	err = first.Tx(ctx, func(tx *Store) error {
		if err := tx.Identity().CreateTeam(ctx, &Team{Name: "holds the lock"}); err != nil {
			return err
		}
		busy := second.Identity().CreateTeam(ctx, &Team{Name: "waits"})
		if busy == nil || !Retryable(busy) {
			t.Errorf("a write while another connection writes: %v, retryable %v", busy, Retryable(busy))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dup := first.Identity().CreateTeam(ctx, &Team{Name: "holds the lock"})
	if !errors.Is(dup, ErrConflict) {
		t.Fatalf("duplicate team name: %v", dup)
	}
}
