package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/demo"
	"github.com/duplexsync/duplex/internal/outbound"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/server"
)

// peerHalf is one of the two deployments of `duplex demo --peers`.
type peerHalf struct {
	name     string // support or engineering
	app      *app
	token    string
	db       string // its system's SQLite file
	system   int64
	url      string
	addr     string
	log      *slog.Logger
	served   chan error
	settings func(string) map[string]any
	pollMS   int64
	peerHost string // the other half's listen host, allowed in this half's outbound policy
}

// runDemoPeers starts two deployments in this process, each with its own
// store (DIR/support, DIR/engineering), its own SQLite system and its own
// side's scripts of the support-escalation template, and links them with an
// invitation (docs/peers.md). Each serves on its own address; the second
// listens on the first's port + 1 unless --peer-addr says otherwise.
func runDemoPeers(ctx context.Context, logger *slog.Logger, c common, peerAddr string, pollMS int64, out io.Writer) error {
	if c.db != "" {
		return errors.New("demo --peers keeps two SQLite stores in --data; --db does not apply")
	}
	if peerAddr == "" {
		host, port, err := net.SplitHostPort(c.addr)
		if err != nil {
			return fmt.Errorf("--addr: %w", err)
		}
		var p int
		if _, err := fmt.Sscan(port, &p); err != nil || p == 0 {
			return errors.New("demo --peers with --addr port 0 needs --peer-addr")
		}
		peerAddr = net.JoinHostPort(host, fmt.Sprint(p+1))
	}
	halves := []*peerHalf{{name: "support", settings: demo.SupportSettings, pollMS: pollMS}, {name: "engineering", settings: demo.EngineeringSettings, pollMS: pollMS}}
	addrs := []string{c.addr, peerAddr}
	for i, h := range halves {
		host, _, err := net.SplitHostPort(addrs[1-i])
		if err != nil {
			return fmt.Errorf("listen address %q: %w", addrs[1-i], err)
		}
		h.peerHost = host
	}
	serveCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i, h := range halves {
		hc := c
		hc.dataDir = filepath.Join(c.dataDir, h.name)
		paths, err := demo.CreateDatabases(ctx, filepath.Join(hc.dataDir, "systems"))
		if err != nil {
			return err
		}
		h.db = paths.Support
		if h.name == "engineering" {
			h.db = paths.Engineering
		}
		h.log = logger.With("deployment", h.name)
		h.app, err = buildApp(ctx, h.log, hc, func(st *store.Store) (o server.AuthOptions, err error) {
			o, h.token, err = demoAccess(ctx, st)
			return o, err
		})
		if err != nil {
			return err
		}
		defer h.app.close()
		if h.system, err = peerDemoSystem(ctx, h); err != nil {
			return err
		}
		h.addr = addrs[i]
		h.url = "http://" + addrs[i]
		if h.app.tls != nil {
			h.url = "https://" + addrs[i]
		}
	}
	x, y := halves[0], halves[1]
	links, err := x.app.store.ListPeerLinks(ctx)
	if err != nil {
		return err
	}
	// The link is made before either engine polls: the support desk's
	// ticket 1 is then taken by the link's connection (queued while it
	// waits for the acceptance), not read past by a poller with no
	// connection to give it to.
	var code string
	if len(links) == 0 {
		inv, err := x.app.peers.Invite(ctx, "demo", peering.InviteIn{Setup: peering.Setup{TeamID: store.DefaultTeamID, Name: "escalation",
			SystemID: x.system, Template: demo.Template, PublicURL: x.url}, Side: "a"})
		if err != nil {
			return fmt.Errorf("invite: %w", err)
		}
		code = inv.Code
	}
	if err := x.start(serveCtx); err != nil {
		return err
	}
	if code != "" {
		if _, err := y.app.peers.Accept(ctx, "demo", peering.AcceptIn{Code: code, Setup: peering.Setup{TeamID: store.DefaultTeamID,
			Name: "escalation", SystemID: y.system, Template: demo.Template, PublicURL: y.url}}); err != nil {
			return fmt.Errorf("accept: %w", err)
		}
	}
	if err := y.start(serveCtx); err != nil {
		return err
	}
	fmt.Fprintf(out, demoPeersHelp, x.url, x.db, x.token, y.url, y.db, y.token)
	select {
	case err = <-x.served:
	case err = <-y.served:
	}
	cancel()
	return err
}

// start serves the half until ctx ends; it returns once it listens.
func (h *peerHalf) start(ctx context.Context) error {
	ready := make(chan string, 1)
	h.served = make(chan error, 1)
	go func() { h.served <- h.app.serve(ctx, h.log, h.addr, func(url string) { ready <- url }) }()
	select {
	case <-ready:
		return nil
	case err := <-h.served:
		return fmt.Errorf("%s: %w", h.name, err)
	}
}

// peerDemoSystem makes the half's one SQLite system, once.
func peerDemoSystem(ctx context.Context, h *peerHalf) (int64, error) {
	st := h.app.store
	if err := demo.AllowFolder(ctx, st, filepath.Dir(h.db)); err != nil {
		return 0, err
	}
	// The peer is reached through the outbound policy, as systems are.
	if err := allowPeerHost(ctx, st, h.peerHost); err != nil {
		return 0, err
	}
	systems, err := st.ListSystems(ctx)
	if err != nil {
		return 0, err
	}
	for _, s := range systems {
		if s.Name == h.name && s.Kind == "sql" {
			return s.ID, nil
		}
	}
	raw, err := json.Marshal(h.settings(h.db))
	if err != nil {
		return 0, err
	}
	sealed, err := h.app.box.SealMap(nil)
	if err != nil {
		return 0, err
	}
	sys := store.System{Name: h.name, Kind: "sql", TeamID: store.DefaultTeamID, Settings: string(raw), Secrets: sealed, PollIntervalMS: h.pollMS}
	return sys.ID, st.CreateSystem(ctx, &sys)
}

const demoPeersHelp = `
Duplex peer demo: two deployments, each with its own store, linked by an invitation.

  support (company X):      %[1]s   database %[2]s
  engineering (company Y):  %[4]s   database %[5]s

Each runs only its own side's scripts; they exchange signed replicas (docs/peers.md).
Ticket 1 carries "todev" and is on its way. Escalate another, resolve it on the other side:
  sqlite3 %[2]s "UPDATE tickets SET labels = 'export,todev' WHERE id = 3"
  sqlite3 %[5]s "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-3'"
The link's status on each side:
  curl -s -H "Authorization: Bearer %[3]s" %[1]s/api/peer-links
  curl -s -H "Authorization: Bearer %[6]s" %[4]s/api/peer-links
`

// allowPeerHost adds an all-team outbound rule for the other demo
// deployment's address unless one is there (a loopback address: the policy
// refuses those unless named).
func allowPeerHost(ctx context.Context, st *store.Store, host string) error {
	row, err := st.OutboundPolicy(ctx)
	if err != nil {
		return err
	}
	p, err := outbound.Parse([]byte(row.Policy))
	if err != nil {
		return err
	}
	for _, r := range p.Allow {
		if r.TeamID == 0 && (r.Network == host || r.Host == host) {
			return nil
		}
	}
	r := outbound.Rule{Network: host, Note: "duplex demo --peers: the other deployment"}
	if net.ParseIP(host) == nil {
		r = outbound.Rule{Host: host, Note: r.Note}
	}
	p.Allow = append(p.Allow, r)
	js := p.JSON()
	return st.SetOutboundPolicy(ctx, js, "demo", "outbound policy set: "+js)
}
