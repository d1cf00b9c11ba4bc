package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/engine"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/internal/tlsconf"
)

// newGuards is the outbound policy of this process: read from the store,
// around a fence of the store's own database and key files.
func newGuards(st *store.Store, c common, logger *slog.Logger) *outbound.Guards {
	fence := outbound.StoreFence(c.dsn(), "")
	for _, name := range []string{keyFile, nextKeyFile, oldKeyFile} {
		fence.Files = append(fence.Files, filepath.Join(c.dataDir, name))
	}
	return outbound.NewGuards(func(ctx context.Context) (string, error) {
		r, err := st.OutboundPolicy(ctx)
		return r.Policy, err
	}, fence, logger)
}

// alertTransport is the alert webhook's transport: base, dialing through
// the guard of the organisation's own requests (rules for every team).
func alertTransport(base http.RoundTripper, guards *outbound.Guards) http.RoundTripper {
	return tlsconf.WithDial(base, guards.For(0).DialContext)
}

// warnRefused names, at start, every system the policy refuses (a store
// upgraded to migration 00016 whose systems reach loopback, private
// addresses or SQLite files): they fail until an org admin allows them.
func warnRefused(ctx context.Context, st *store.Store, eng *engine.Engine, logger *slog.Logger) {
	systems, err := st.ListSystems(ctx)
	if err != nil {
		return
	}
	for _, sys := range systems {
		if err := eng.CheckSystem(ctx, sys); errors.Is(err, connectors.ErrRefused) {
			logger.Warn("the outbound policy refuses this system: it will not sync until an org admin allows it (docs/operations.md#outbound-policy)",
				"system", sys.Name, "team", sys.TeamID, "err", err)
		}
	}
}

const policyUsage = `usage:
  duplex policy show  [--data DIR] [--db DSN]
  duplex policy allow [--data DIR] [--db DSN] (--network CIDR | --host NAME | --sqlite-dir DIR) [--port N]... [--team ID] [--note TEXT]
  duplex policy remove [--data DIR] [--db DSN] N   (rule N as show numbers it)
  duplex policy set   [--data DIR] [--db DSN] FILE|-   (the whole policy as JSON, as GET /api/outbound-policy shows it)`

// runPolicy shows or changes the outbound policy; changes are audited with
// the actor "cli".
func runPolicy(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(policyUsage)
	}
	action := args[0]
	fs := flag.NewFlagSet("policy "+action, flag.ContinueOnError)
	var c common
	c.register(fs, "duplex-data")
	var r outbound.Rule
	var ports portList
	fs.StringVar(&r.Network, "network", "", "allow a CIDR or an address (allow)")
	fs.StringVar(&r.Host, "host", "", "allow a host name or *.suffix (allow)")
	fs.StringVar(&r.SQLiteDir, "sqlite-dir", "", "allow SQLite files under this directory (allow)")
	fs.Var(&ports, "port", "limit the rule to this port; repeat for several (allow)")
	fs.Int64Var(&r.TeamID, "team", 0, "limit the rule to this team id (allow; default every team)")
	fs.StringVar(&r.Note, "note", "", "why the rule exists (allow)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch action {
	case "show", "allow", "set", "remove":
	default:
		return errors.New(policyUsage)
	}
	st, err := openStore(ctx, c)
	if err != nil {
		return err
	}
	defer st.Close()
	row, err := st.OutboundPolicy(ctx)
	if err != nil {
		return err
	}
	p, err := outbound.Parse([]byte(row.Policy))
	if err != nil {
		return err
	}
	switch action {
	case "allow":
		if r.SQLiteDir != "" {
			if r.SQLiteDir, err = filepath.Abs(r.SQLiteDir); err != nil {
				return err
			}
		}
		r.Ports = ports
		p.Allow = append(p.Allow, r)
	case "remove":
		n, err := strconv.Atoi(fs.Arg(0))
		if fs.NArg() != 1 || err != nil || n < 1 || n > len(p.Allow) {
			return fmt.Errorf("policy remove: give a rule number from 1 to %d (duplex policy show)", len(p.Allow))
		}
		p.Allow = append(p.Allow[:n-1], p.Allow[n:]...)
	case "set":
		if fs.NArg() != 1 {
			return errors.New(policyUsage)
		}
		var raw []byte
		if fs.Arg(0) == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(fs.Arg(0))
		}
		if err != nil {
			return err
		}
		if p, err = outbound.Parse(raw); err != nil {
			return err
		}
	}
	if action != "show" {
		if err := p.Validate(); err != nil {
			return err
		}
		js := p.JSON()
		if err := st.SetOutboundPolicy(ctx, js, "cli", "outbound policy set: "+js); err != nil {
			return err
		}
	}
	return showPolicy(out, p)
}

func showPolicy(out io.Writer, p outbound.Policy) error {
	if p.OnlyListed {
		fmt.Fprintln(out, "public addresses: only those a rule allows")
	} else {
		fmt.Fprintln(out, "public addresses: allowed")
	}
	fmt.Fprintln(out, "refused unless a rule allows them: loopback, link-local, metadata, unspecified, private, multicast addresses, unix sockets, every SQLite file")
	if len(p.Allow) == 0 {
		fmt.Fprintln(out, "allow rules: none")
	}
	for i, r := range p.Allow {
		what := "network " + r.Network
		switch {
		case r.Host != "":
			what = "host " + r.Host
		case r.SQLiteDir != "":
			what = "sqlite_dir " + r.SQLiteDir
		}
		if len(r.Ports) > 0 {
			ps := make([]string, len(r.Ports))
			for j, n := range r.Ports {
				ps[j] = strconv.Itoa(n)
			}
			what += " port " + strings.Join(ps, ",")
		}
		team := "every team"
		if r.TeamID != 0 {
			team = "team " + strconv.FormatInt(r.TeamID, 10)
		}
		fmt.Fprintf(out, "%d. allow %s (%s)", i+1, what, team)
		if r.Note != "" {
			fmt.Fprintf(out, ": %s", r.Note)
		}
		fmt.Fprintln(out)
	}
	return nil
}

// portList is a repeatable --port flag.
type portList []int

func (p *portList) String() string { return fmt.Sprint(*p) }

func (p *portList) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("port %q: %w", v, err)
	}
	*p = append(*p, n)
	return nil
}
