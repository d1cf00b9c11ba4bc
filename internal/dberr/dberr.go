// Package dberr classifies the database drivers' errors for every store
// package over the one handle (engine/store, internal/identity): the same
// sentinels, so a caller's errors.Is works whichever aggregate answered.
// Errors are classified by the drivers' codes, not their message text.
package dberr

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
	"gorm.io/gorm"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique constraint is violated.
var ErrConflict = errors.New("already exists")

// Wrap turns gorm's and the drivers' errors into the sentinels, saying
// what was being done.
func Wrap(what string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case IsUniqueViolation(err):
		return fmt.Errorf("%s: %w", what, ErrConflict)
	default:
		return fmt.Errorf("%s: %w", what, err)
	}
}

// Retryable reports an error that only says the transaction lost a race
// with another one: PostgreSQL's deadlock detection or a serialization
// failure, or SQLite busy or locked past its busy timeout. Nothing of it was
// written, and running it again may succeed.
func Retryable(err error) bool {
	switch pgCode(err) {
	case "40P01", "40001": // deadlock_detected, serialization_failure
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// IsUniqueViolation reports a unique or primary key constraint violation.
func IsUniqueViolation(err error) bool {
	if pgCode(err) == "23505" { // unique_violation
		return true
	}
	var se sqlite3.Error
	return errors.As(err, &se) &&
		(se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// pgCode is a PostgreSQL error's SQLSTATE, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
