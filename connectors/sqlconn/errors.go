package sqlconn

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/duplexsync/duplex/connectors"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// classify returns the connectors sentinel for the database errors it
// recognises, or nil: ErrUnavailable for locks, lost connections and
// overload (retry later), ErrInvalid for rejected data (do not retry),
// ErrBadConfig for bad credentials or a missing database.
func classify(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil // the caller's own doing; context.DeadlineExceeded is also a net.Error
	}
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrIoErr, sqlite3.ErrFull:
			return connectors.ErrUnavailable
		case sqlite3.ErrConstraint, sqlite3.ErrMismatch, sqlite3.ErrTooBig, sqlite3.ErrRange:
			return connectors.ErrInvalid
		case sqlite3.ErrCantOpen, sqlite3.ErrNotADB, sqlite3.ErrAuth, sqlite3.ErrPerm:
			return connectors.ErrBadConfig
		}
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", // serialization, deadlock, lock not available
			strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57P"):
			return connectors.ErrUnavailable
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"):
			return connectors.ErrInvalid
		case strings.HasPrefix(pe.Code, "28"), pe.Code == "3D000":
			return connectors.ErrBadConfig
		}
		return nil
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013:
			// too many connections, shutdown, lock wait timeout, deadlock,
			// cannot connect, server gone, lost connection
			return connectors.ErrUnavailable
		case 1048, 1062, 1264, 1265, 1292, 1364, 1366, 1406, 1451, 1452:
			// NULL into NOT NULL, duplicate, out of range, truncated, bad
			// datetime, no default, bad value, too long, foreign keys
			return connectors.ErrInvalid
		case 1044, 1045, 1049:
			return connectors.ErrBadConfig
		}
		return nil
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) {
		return connectors.ErrUnavailable
	}
	return nil
}
