// Package outbound is the organisation's outbound policy: which addresses,
// host names and SQLite directories systems may reach, and the fence around
// the store's own database that no policy lifts. It implements
// connectors.Guard for one team; the engine hands that to every connector it
// opens, and the alerts evaluator dials its webhook through it.
//
// The default (an empty policy) refuses loopback, link-local, the cloud
// metadata addresses, unspecified, private (RFC 1918, CGNAT 100.64.0.0/10,
// IPv6 ULA), multicast and broadcast addresses and every SQLite file, and
// allows public addresses on any port. Allow rules open the rest, per team or
// for all teams.
package outbound

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
)

// Policy is what the org admin sets (GET/PUT /api/outbound-policy, duplex
// policy). Its JSON is stored as is.
type Policy struct {
	// OnlyListed refuses public addresses too unless a rule allows them.
	OnlyListed bool   `json:"only_listed"`
	Allow      []Rule `json:"allow"`
}

// Rule allows one kind of target: exactly one of Network, Host or SQLiteDir.
type Rule struct {
	// TeamID limits the rule to one team's systems; 0: every team.
	TeamID int64 `json:"team_id,omitempty"`
	// Network is a CIDR ("10.1.0.0/16") or an address ("127.0.0.1"). A
	// metadata address is allowed only by a rule naming exactly it.
	Network string `json:"network,omitempty"`
	// Host is a host name ("redmine.corp.example") or a suffix pattern
	// ("*.corp.example"); whatever it resolves to is allowed, metadata
	// addresses excepted. It trusts that name's DNS.
	Host string `json:"host,omitempty"`
	// Ports limits Network and Host rules; empty: any port.
	Ports []int `json:"ports,omitempty"`
	// SQLiteDir is an absolute directory whose SQLite files (after links
	// are followed) sql systems may open.
	SQLiteDir string `json:"sqlite_dir,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Default is the policy of a new store: no rule.
func Default() Policy { return Policy{Allow: []Rule{}} }

// Parse reads a stored or sent policy and validates it.
func Parse(raw []byte) (Policy, error) {
	p := Default()
	if len(bytes.TrimSpace(raw)) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("outbound policy: %w", err)
	}
	if p.Allow == nil {
		p.Allow = []Rule{}
	}
	return p, p.Validate()
}

// ErrInvalid marks a policy that cannot be used.
var ErrInvalid = errors.New("invalid outbound policy")

// Validate checks every rule, and cleans names and paths in place.
func (p *Policy) Validate() error {
	for i := range p.Allow {
		r := &p.Allow[i]
		n := 0
		for _, s := range []string{r.Network, r.Host, r.SQLiteDir} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: rule %d: set exactly one of network, host, sqlite_dir", ErrInvalid, i+1)
		}
		if r.TeamID < 0 {
			return fmt.Errorf("%w: rule %d: team_id must not be negative", ErrInvalid, i+1)
		}
		for _, port := range r.Ports {
			if port < 1 || port > 65535 {
				return fmt.Errorf("%w: rule %d: port %d out of range", ErrInvalid, i+1, port)
			}
		}
		switch {
		case r.Network != "":
			if _, err := parseNetwork(r.Network); err != nil {
				return fmt.Errorf("%w: rule %d: network %q: want a CIDR or an IP address", ErrInvalid, i+1, r.Network)
			}
		case r.Host != "":
			h := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.Host), "."))
			name := strings.TrimPrefix(h, "*.")
			if name == "" || strings.ContainsAny(name, "*/: ") {
				return fmt.Errorf("%w: rule %d: host %q: want a name or *.suffix", ErrInvalid, i+1, r.Host)
			}
			if _, err := netip.ParseAddr(name); err == nil {
				return fmt.Errorf("%w: rule %d: host %q is an address: use network", ErrInvalid, i+1, r.Host)
			}
			r.Host = h
		default:
			if !filepath.IsAbs(r.SQLiteDir) {
				return fmt.Errorf("%w: rule %d: sqlite_dir %q must be an absolute path", ErrInvalid, i+1, r.SQLiteDir)
			}
			if len(r.Ports) > 0 {
				return fmt.Errorf("%w: rule %d: ports do not apply to sqlite_dir", ErrInvalid, i+1)
			}
			r.SQLiteDir = filepath.Clean(r.SQLiteDir)
		}
	}
	return nil
}

// JSON is the stored form.
func (p Policy) JSON() string {
	b, _ := json.Marshal(p)
	return string(b)
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		return pf.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// applies: the rule is for every team or for this one.
func (r Rule) applies(team int64) bool { return r.TeamID == 0 || r.TeamID == team }

func (r Rule) port(port int) bool { return len(r.Ports) == 0 || slices.Contains(r.Ports, port) }

func (r Rule) matchesHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if suffix, ok := strings.CutPrefix(r.Host, "*."); ok {
		return strings.HasSuffix(host, "."+suffix)
	}
	return host == r.Host
}

var (
	metadata = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack...
		netip.MustParseAddr("169.254.170.2"),   // AWS ECS task metadata
		netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
		netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	}
	cgnat     = netip.MustParsePrefix("100.64.0.0/10")
	broadcast = netip.MustParseAddr("255.255.255.255")
)

// class names the default rule that refuses ip, "" for a public address.
func class(ip netip.Addr) string {
	switch {
	case slices.Contains(metadata, ip):
		return "metadata"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsMulticast(), ip == broadcast:
		return "multicast"
	case ip.IsPrivate(), cgnat.Contains(ip):
		return "private"
	}
	return ""
}

// Decide is the policy's answer for one address dialed as host (the name
// asked for, "" for a literal) on port: "" allows, else the refusing rule.
func (p Policy) Decide(team int64, host string, ip netip.Addr, port int) string {
	ip = ip.Unmap()
	c := class(ip)
	for _, r := range p.Allow {
		if !r.applies(team) || !r.port(port) {
			continue
		}
		switch {
		case r.Network != "":
			pf, err := parseNetwork(r.Network)
			if err != nil || !pf.Contains(ip) {
				continue
			}
			if c == "metadata" && !pf.IsSingleIP() {
				continue
			}
			return ""
		case r.Host != "" && host != "":
			if r.matchesHost(host) && c != "metadata" {
				return ""
			}
		}
	}
	if c == "" && p.OnlyListed {
		return "not-listed"
	}
	return c
}

// SQLiteAllowed reports whether a rule of team lists a directory that holds
// path (both already free of links).
func (p Policy) SQLiteAllowed(team int64, path string, real func(string) string) bool {
	for _, r := range p.Allow {
		if r.SQLiteDir == "" || !r.applies(team) {
			continue
		}
		dir := real(r.SQLiteDir)
		if rel, err := filepath.Rel(dir, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && rel != "." {
			return true
		}
	}
	return false
}

// Fixed is a Loader of one policy, for tests and tools: the Redmine and RT
// tests allow their loopback servers with it, explicitly.
func Fixed(raw string) Loader {
	return func(context.Context) (string, error) { return raw, nil }
}

// LoopbackForTests allows 127.0.0.1 and ::1 on any port, for every team.
const LoopbackForTests = `{"allow":[{"network":"127.0.0.1","note":"tests"},{"network":"::1","note":"tests"}]}`
