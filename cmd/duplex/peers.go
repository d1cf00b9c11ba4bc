package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/duplexsync/duplex/engine/secret"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/metrics"
	"github.com/duplexsync/duplex/peering"
	"github.com/duplexsync/duplex/scripting"
	"github.com/duplexsync/duplex/scripts"
)

// peerAllow parses DUPLEX_PEER_ALLOW: comma-separated addresses or CIDR
// prefixes that peer deployments may call /peer/v1 from ("" = any).
func peerAllow(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("DUPLEX_PEER_ALLOW: %w", err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("DUPLEX_PEER_ALLOW: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// peerEngine lets the peer service reach the engine, which is built after
// it (the engine tells the service when it queued a message).
type peerEngine struct {
	e interface {
		Wake()
		Reload(int64)
		CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error
	}
}

func (p *peerEngine) Wake()           { p.e.Wake() }
func (p *peerEngine) Reload(id int64) { p.e.Reload(id) }
func (p *peerEngine) CheckScript(ctx context.Context, conn store.Connection, name string, kind scripting.Kind, src string) error {
	return p.e.CheckScript(ctx, conn, name, kind, src)
}

// newPeers builds the peer link service and its metrics.
func newPeers(st *store.Store, box *secret.Box, lib *scripts.Library, logger *slog.Logger, m *metrics.Metrics, transport func(int64) http.RoundTripper) (*peering.Service, *peerEngine, error) {
	allow, err := peerAllow(os.Getenv("DUPLEX_PEER_ALLOW"))
	if err != nil {
		return nil, nil, err
	}
	pe := &peerEngine{}
	svc := peering.New(peering.Options{Store: st, Box: box, Templates: lib, Engine: pe, Logger: logger, Allow: allow, Transport: transport})
	m.PeerLinks(func() []metrics.PeerLinkStat {
		links := svc.LinkCounters()
		out := make([]metrics.PeerLinkStat, len(links))
		for i, l := range links {
			out[i] = metrics.PeerLinkStat{LinkID: l.LinkID, Name: l.Name, Sent: l.Sent, Received: l.Received,
				Retries: l.Retries, Refused: l.Refused, LastLagSeconds: l.LastLag.Seconds()}
		}
		return out
	})
	return svc, pe, nil
}
