// Package tlsconf holds Duplex's TLS settings: the server's certificate pair,
// read from files and reloaded when they change, and the transport every
// connector's HTTPS requests go through, which verifies certificates against
// the system roots plus an optional CA bundle. There is no switch that turns
// verification off.
package tlsconf

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// Reloader serves a certificate pair from two files. On every handshake it
// stats both files (no read) and, when their size or modification time
// changed, loads the pair again; a pair that does not load (unreadable,
// malformed, key not matching the certificate, a file missing halfway
// through a replacement) is logged once and the previous pair is kept.
type Reloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu    sync.Mutex
	cert  *tls.Certificate
	tried string // the files' stat when last loaded or refused
}

// NewReloader loads the pair; an error here stops the start-up, as there is
// no previous pair to fall back on.
func NewReloader(certFile, keyFile string, log *slog.Logger) (*Reloader, error) {
	if log == nil {
		log = slog.Default()
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, log: log}
	r.tried = r.stamp()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	r.cert = &cert
	log.Info("serving TLS", certAttrs(&cert, certFile)...)
	return r, nil
}

// stamp is the files' size and modification time, or the stat error.
func (r *Reloader) stamp() string {
	var b strings.Builder
	for _, name := range []string{r.certFile, r.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			fmt.Fprintf(&b, "%v;", err)
			continue
		}
		fmt.Fprintf(&b, "%d %d;", fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// GetCertificate is tls.Config.GetCertificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stamp(); s != r.tried {
		// Stat before reading: a change after the stat shows in the next one.
		r.tried = s
		cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if err != nil {
			r.log.Error("tls: the changed certificate pair does not load; still serving the previous one",
				"err", err, "cert", r.certFile, "key", r.keyFile)
		} else {
			r.cert = &cert
			r.log.Info("tls: reloaded the certificate pair", certAttrs(&cert, r.certFile)...)
		}
	}
	return r.cert, nil
}

// Current returns the pair being served.
func (r *Reloader) Current() *tls.Certificate {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert
}

// Config is the server's TLS configuration: this reloader's pair, TLS 1.2
// at least (Go's default cipher suites).
func (r *Reloader) Config() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

func certAttrs(c *tls.Certificate, file string) []any {
	a := []any{"cert", file}
	if c.Leaf != nil {
		a = append(a, "subject", c.Leaf.Subject.String(), "dns", c.Leaf.DNSNames, "ips", c.Leaf.IPAddresses,
			"not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return a
}

// ClientTransport is the base transport of every connector (the metrics
// wrapper goes around it). Without caFile it is a copy of
// http.DefaultTransport (the system roots) that keeps more idle
// connections (pooled). With caFile, the PEM certificates in it are added
// to the system roots, on such a copy, with TLS 1.2 at least. Either way a
// certificate error names the remedy.
func ClientTransport(caFile string) (http.RoundTripper, int, error) {
	if caFile == "" {
		return hinted{next: pooled(http.DefaultTransport.(*http.Transport).Clone())}, 0, nil
	}
	pool, n, err := pool(caFile)
	if err != nil {
		return nil, 0, err
	}
	t := pooled(http.DefaultTransport.(*http.Transport).Clone())
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return hinted{next: t}, n, nil
}

// IdleConnsPerHost is how many idle connections a connector's transport
// keeps to one host. Go's default keeps 2: a connector with 16 requests in
// flight (the engine's lane) dialed most of them anew each time, 5 % of a
// process's CPU against a remote that answers after 20 ms (make
// bench-cluster). A system is mostly one host, so this is per system; they
// close after the default 90 s idle.
const IdleConnsPerHost = 32

func pooled(t *http.Transport) *http.Transport {
	t.MaxIdleConnsPerHost = IdleConnsPerHost
	return t
}

// pool is the system roots plus the certificates of caFile. Every
// CERTIFICATE block must parse; other blocks are ignored.
func pool(caFile string) (*x509.CertPool, int, error) {
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, 0, fmt.Errorf("CA file: %w", err)
	}
	p, err := x509.SystemCertPool()
	if err != nil {
		return nil, 0, fmt.Errorf("system roots: %w", err)
	}
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, 0, fmt.Errorf("CA file %s: certificate %d: %w", caFile, n+1, err)
		}
		p.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("CA file %s: no PEM certificate in it", caFile)
	}
	return p, n, nil
}

// hinted adds what to do to a certificate error from an unknown authority.
type hinted struct{ next http.RoundTripper }

func (h hinted) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(r)
	var unknown x509.UnknownAuthorityError
	if err != nil && errors.As(err, &unknown) {
		err = &CertError{Err: err}
	}
	return resp, err
}

// CertError is a system's certificate that no trusted authority signed.
type CertError struct{ Err error }

func (e *CertError) Error() string {
	return e.Err.Error() + " (the system's certificate is not signed by a trusted authority: add its CA to the bundle given with --ca-file / DUPLEX_CA_FILE)"
}

func (e *CertError) Unwrap() error { return e.Err }

// WithDial is rt, a transport ClientTransport returned, on its own copy
// whose connections are dialed by dial (the outbound policy's guard); nil
// dial returns rt. Any other transport gets a copy of the default one, so a
// dial is never left unguarded.
func WithDial(rt http.RoundTripper, dial func(ctx context.Context, network, addr string) (net.Conn, error)) http.RoundTripper {
	if dial == nil {
		return rt
	}
	t := http.DefaultTransport.(*http.Transport)
	if h, ok := rt.(hinted); ok {
		if ht, ok := h.next.(*http.Transport); ok {
			t = ht
		}
	}
	t = pooled(t.Clone())
	t.DialContext = dial
	return hinted{next: t}
}
