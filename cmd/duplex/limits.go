package main

import (
	"flag"
	"os"
	"strconv"
	"time"

	"github.com/duplexsync/duplex/server"
)

// registerLimits adds the HTTP server's limits (server.Limits) to the
// commands that serve; zero keeps a default (docs/operations.md).
func registerLimits(fs *flag.FlagSet, l *server.Limits) {
	dur := func(p *time.Duration, name, env, usage string) {
		v, _ := time.ParseDuration(os.Getenv(env))
		fs.DurationVar(p, name, v, usage+" (env "+env+")")
	}
	dur(&l.ReadHeaderTimeout, "read-header-timeout", "DUPLEX_READ_HEADER_TIMEOUT", "how long a client may take to send a request's headers (default 10s)")
	dur(&l.ReadTimeout, "read-timeout", "DUPLEX_READ_TIMEOUT", "how long a client may take to send a whole request, body included (default 30s)")
	dur(&l.WriteTimeout, "write-timeout", "DUPLEX_WRITE_TIMEOUT", "how long a request may take from its headers to the end of its answer (default 2m)")
	dur(&l.IdleTimeout, "idle-timeout", "DUPLEX_IDLE_TIMEOUT", "how long a keep-alive connection may stay idle (default 60s)")
	dur(&l.BodyGrace, "body-grace", "DUPLEX_BODY_GRACE", "head start of a request body before --min-body-rate counts (default 5s)")
	rate, _ := strconv.ParseInt(os.Getenv("DUPLEX_MIN_BODY_RATE"), 10, 64)
	fs.Int64Var(&l.MinBodyRate, "min-body-rate", rate, "slowest average rate of a request body in bytes/s, after --body-grace; slower bodies are cut with 408 (default 4096; -1 off) (env DUPLEX_MIN_BODY_RATE)")
	conns, _ := strconv.Atoi(os.Getenv("DUPLEX_MAX_CONNS_PER_ADDR"))
	fs.IntVar(&l.MaxConnsPerAddr, "max-conns-per-addr", conns, "open connections allowed per client address; more are closed at once (default 128; -1 off, e.g. behind a reverse proxy) (env DUPLEX_MAX_CONNS_PER_ADDR)")
}
