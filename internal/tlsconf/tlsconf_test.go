package tlsconf_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/duplexsync/duplex/internal/tlsconf"
	"github.com/duplexsync/duplex/internal/tlsconf/certtest"
)

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func serial(t *testing.T, r *tlsconf.Reloader) int64 {
	t.Helper()
	c, err := r.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

func TestReloader(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "test CA")
	c1, k1 := ca.Server(t, 101)
	certFile := certtest.Write(t, dir, "cert.pem", c1)
	keyFile := certtest.Write(t, dir, "key.pem", k1)
	var log logBuf
	r, err := tlsconf.NewReloader(certFile, keyFile, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if got := serial(t, r); got != 101 {
		t.Fatalf("serial %d, want 101", got)
	}
	if cfg := r.Config(); cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("min version %x", cfg.MinVersion)
	}

	// A new pair, written as a tool that replaces the files in place would:
	// certificate first, so one handshake sees the new certificate beside
	// the old key. The old pair stays until the key follows.
	c2, k2 := ca.Server(t, 102)
	certtest.Write(t, dir, "cert.pem", c2)
	if got := serial(t, r); got != 101 {
		t.Fatalf("half-replaced pair: serial %d, want the old 101", got)
	}
	if !strings.Contains(log.String(), "still serving the previous one") {
		t.Fatalf("the refused pair is not logged:\n%s", log.String())
	}
	certtest.Write(t, dir, "key.pem", k2)
	if got := serial(t, r); got != 102 {
		t.Fatalf("serial %d, want the new 102", got)
	}

	// Broken files: garbage, then a missing key. Logged once each, the
	// pair in use stays.
	before := strings.Count(log.String(), "does not load")
	certtest.Write(t, dir, "cert.pem", []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	for range 3 {
		if got := serial(t, r); got != 102 {
			t.Fatalf("broken pair: serial %d, want 102", got)
		}
	}
	if n := strings.Count(log.String(), "does not load") - before; n != 1 {
		t.Fatalf("a broken pair logged %d times over 3 handshakes, want once:\n%s", n, log.String())
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if got := serial(t, r); got != 102 {
		t.Fatalf("missing key: serial %d, want 102", got)
	}
	c3, k3 := ca.Server(t, 103)
	certtest.Write(t, dir, "key.pem", k3)
	certtest.Write(t, dir, "cert.pem", c3)
	if got := serial(t, r); got != 103 {
		t.Fatalf("after the repair: serial %d, want 103", got)
	}
	if !strings.Contains(log.String(), "reloaded the certificate pair") {
		t.Fatalf("reload not logged:\n%s", log.String())
	}
}

func TestNewReloaderRefusesABrokenPair(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "test CA")
	c1, _ := ca.Server(t, 1)
	_, k2 := ca.Server(t, 2)
	_, err := tlsconf.NewReloader(certtest.Write(t, dir, "c.pem", c1), certtest.Write(t, dir, "k.pem", k2), nil)
	if err == nil || !strings.Contains(err.Error(), "private key does not match") {
		t.Fatalf("mismatched pair at start: %v", err)
	}
	if _, err := tlsconf.NewReloader(filepath.Join(dir, "none.pem"), filepath.Join(dir, "k.pem"), nil); err == nil {
		t.Fatal("a missing certificate file started")
	}
}

func TestClientTransport(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "private CA")
	certPEM, keyPEM := ca.Server(t, 7)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()

	get := func(rt http.RoundTripper) error {
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	def, n, err := tlsconf.ClientTransport("")
	if err != nil || n != 0 {
		t.Fatal(n, err)
	}
	err = get(def)
	var ce *tlsconf.CertError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "certificate signed by unknown authority") ||
		!strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("without the CA: %v", err)
	}

	other := certtest.NewCA(t, "another CA")
	bundle := certtest.Write(t, dir, "bundle.pem", append(append([]byte("a comment line\n"), other.PEM...), ca.PEM...))
	rt, n, err := tlsconf.ClientTransport(bundle)
	if err != nil || n != 2 {
		t.Fatalf("bundle: %d certificates, %v", n, err)
	}
	if err := get(rt); err != nil {
		t.Fatalf("with the CA: %v", err)
	}

	if _, _, err := tlsconf.ClientTransport(certtest.Write(t, dir, "empty.pem", []byte("nothing\n"))); err == nil ||
		!strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a file without certificates: %v", err)
	}
	if _, _, err := tlsconf.ClientTransport(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
}

// A connector's transport keeps its connections to a host between bursts
// of requests as wide as the engine's lane: the second burst of 16 dials
// none (with Go's default of 2 idle per host it dialed 14 again).
func TestTransportKeepsALanesConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond) // all 16 are open at once
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	var dials atomic.Int64
	var d net.Dialer
	base, _, err := tlsconf.ClientTransport("")
	if err != nil {
		t.Fatal(err)
	}
	rt := tlsconf.WithDial(base, func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return d.DialContext(ctx, network, addr)
	})
	client := &http.Client{Transport: rt}
	burst := func() {
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
	}
	burst()
	first := dials.Load()
	burst()
	if again := dials.Load() - first; again != 0 || first != 16 {
		t.Fatalf("dials: %d in the first burst (want 16), %d more in the second (want 0)", first, again)
	}
}
