package outbound

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLitePath is the file of the store's SQLite DSN (a path, optionally
// with a query).
func SQLitePath(dsn string) string {
	p, _, _ := strings.Cut(dsn, "?")
	return strings.TrimPrefix(p, "file:")
}

// ParsePostgres reads the server and database of a PostgreSQL DSN (URL or
// key=value form) without connecting.
func ParsePostgres(dsn string) (DB, bool) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return DB{}, false
	}
	return DB{Host: cfg.Host, Port: int(cfg.Port), Database: cfg.Database}, true
}
