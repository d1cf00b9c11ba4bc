package sqlconn

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/duplexsync/duplex/connectors"
)

// Check is the sql kind's connectors.Checker: the database a configuration
// names must pass cfg.Guard (the store fence and the outbound policy). It
// reads the DSN only; nothing is opened.
func Check(ctx context.Context, cfg connectors.Config) error {
	if cfg.Guard == nil {
		return nil
	}
	s, err := parseSettings(cfg.Settings)
	if err != nil {
		return nil // the factory reports bad settings in its own words
	}
	if dsn := cfg.Secrets["dsn"]; dsn != "" {
		s.DSN = dsn
	}
	d, err := dialectFor(s.Driver)
	if err != nil || s.DSN == "" {
		return nil
	}
	return checkTarget(ctx, cfg.Guard, d, s.DSN)
}

// checkTarget checks the file or servers dsn reaches.
func checkTarget(ctx context.Context, g connectors.Guard, d dialect, dsn string) error {
	switch d {
	case sqlite:
		return g.CheckSQLite(sqlitePath(dsn))
	case postgres:
		cfg, err := pgconn.ParseConfig(dsn)
		if err != nil {
			return nil // open reports it
		}
		hosts := []*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port}}
		hosts = append(hosts, cfg.Fallbacks...)
		for _, h := range hosts {
			if err := g.CheckDatabase(ctx, "postgres", h.Host, int(h.Port), cfg.Database); err != nil {
				return err
			}
			if strings.HasPrefix(h.Host, "/") { // a socket directory: the dial would refuse it
				return &connectors.RefusedError{Rule: "unix-socket", Target: h.Host}
			}
			if err := g.CheckHost(ctx, h.Host, int(h.Port)); err != nil {
				return err
			}
		}
	case mariadb:
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			return nil
		}
		if cfg.Net != "" && !strings.HasPrefix(cfg.Net, "tcp") {
			return &connectors.RefusedError{Rule: "unix-socket", Target: cfg.Net + ":" + cfg.Addr}
		}
		host, port := splitPort(cfg.Addr, 3306)
		if err := g.CheckDatabase(ctx, "mysql", host, port, cfg.DBName); err != nil {
			return err
		}
		return g.CheckHost(ctx, host, port)
	}
	return nil
}

func splitPort(addr string, def int) (string, int) {
	i := strings.LastIndex(addr, ":")
	if i < 0 || strings.HasSuffix(addr, "]") {
		return strings.Trim(addr, "[]"), def
	}
	var p int
	if _, err := fmt.Sscanf(addr[i+1:], "%d", &p); err != nil {
		return strings.Trim(addr[:i], "[]"), def
	}
	return strings.Trim(addr[:i], "[]"), p
}

// sqlitePath is the file a mattn DSN opens (see outbound.SQLitePath; the
// connector does not import it, the guard checks the path it is given).
func sqlitePath(dsn string) string {
	p, _, _ := strings.Cut(dsn, "?")
	if rest, ok := strings.CutPrefix(p, "file:"); ok {
		if strings.Contains(dsn, "mode=memory") {
			return ""
		}
		if after, ok := strings.CutPrefix(rest, "//"); ok {
			if i := strings.Index(after, "/"); i >= 0 {
				rest = after[i:]
			}
		}
		p = unescape(rest)
	}
	if p == ":memory:" {
		return ""
	}
	return p
}

func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var v byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &v); err == nil {
				b.WriteByte(v)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// checkOpened asks SQLite which files it actually opened (main and any
// attached database) and checks each again: a DSN form the parsing above
// misread cannot reach a refused file.
func checkOpened(ctx context.Context, g connectors.Guard, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA database_list")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var seq int
		var name, file string
		if err := rows.Scan(&seq, &name, &file); err != nil {
			return err
		}
		if err := g.CheckSQLite(file); err != nil {
			return err
		}
	}
	return rows.Err()
}
