package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/duplexsync/duplex/connectors"
	"github.com/duplexsync/duplex/connectors/httpconn"
	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/internal/metrics"
	"github.com/duplexsync/duplex/internal/tlsconf"
	"github.com/duplexsync/duplex/internal/tlsconf/certtest"
)

// syncBuf is a log destination the test reads while the server writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestServeTLS runs `duplex serve --tls-cert --tls-key` with certificates
// made here, calls /livez with a client that trusts only the test CA,
// signs in (the cookie is Secure), then replaces the files with a new pair
// and with a broken one, without a restart.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "duplex test CA")
	c1, k1 := ca.Server(t, 1001)
	certFile := certtest.Write(t, dir, "tls.crt", c1)
	keyFile := certtest.Write(t, dir, "tls.key", k1)
	t.Setenv("DUPLEX_ADMIN_EMAIL", "ann@example.com")
	t.Setenv("DUPLEX_ADMIN_PASSWORD", "correct horse battery")

	var log syncBuf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- runServe(ctx, slog.New(slog.NewTextHandler(&log, nil)), []string{"--data", t.TempDir(),
			"--addr", "127.0.0.1:0", "--tls-cert", certFile, "--tls-key", keyFile})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve exited with %v", err)
		}
	})
	urlRe := regexp.MustCompile(`msg="duplex is serving" url=(\S+)`)
	var url string
	for deadline := time.Now().Add(20 * time.Second); url == ""; time.Sleep(20 * time.Millisecond) {
		if m := urlRe.FindStringSubmatch(log.String()); m != nil {
			url = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", log.String())
		}
	}
	if !strings.HasPrefix(url, "https://127.0.0.1:") {
		t.Fatalf("serving %s, want https", url)
	}

	// Each call on a new connection, so each sees the certificate served now.
	client := func(cfg *tls.Config) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
	}
	trusting := client(&tls.Config{RootCAs: ca.Pool()})
	live := func() int64 {
		t.Helper()
		resp, err := trusting.Get(url + "/livez")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/livez: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := live(); got != 1001 {
		t.Fatalf("serial %d, want 1001", got)
	}

	// Clients that do not trust the CA, or offer only TLS 1.1, are refused.
	if _, err := client(&tls.Config{}).Get(url + "/livez"); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Fatalf("a client without the CA: %v", err)
	}
	if _, err := client(&tls.Config{RootCAs: ca.Pool(), MaxVersion: tls.VersionTLS11}).Get(url + "/livez"); err == nil {
		t.Fatal("a TLS 1.1 client was served")
	}
	waitLog(t, &log, `level=WARN msg="http: TLS handshake error from 127.0.0.1`)
	// Plain HTTP on the TLS port gets no API.
	if resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/livez"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served /livez")
		}
	}

	// Over TLS the session cookie is Secure without --secure-cookies.
	resp, err := trusting.Post(url+"/api/auth/login", "application/json",
		strings.NewReader(`{"email":"ann@example.com","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "duplex_session" {
			session = c
		}
	}
	if resp.StatusCode != http.StatusOK || session == nil || !session.Secure || !session.HttpOnly {
		t.Fatalf("sign-in over TLS: %d, cookie %+v", resp.StatusCode, session)
	}

	// A new pair replaces the files: served from the next handshake on.
	c2, k2 := ca.Server(t, 1002)
	certtest.Write(t, dir, "tls.crt", c2)
	certtest.Write(t, dir, "tls.key", k2)
	if got := live(); got != 1002 {
		t.Fatalf("after the replacement: serial %d, want 1002", got)
	}

	// A broken pair (another pair's key) keeps the one in use, and says so.
	_, k3 := ca.Server(t, 1003)
	certtest.Write(t, dir, "tls.key", k3)
	for range 2 {
		if got := live(); got != 1002 {
			t.Fatalf("after a broken replacement: serial %d, want 1002", got)
		}
	}
	if !strings.Contains(log.String(), "still serving the previous one") ||
		!strings.Contains(log.String(), "private key does not match public key") {
		t.Fatalf("the broken pair is not logged:\n%s", log.String())
	}
}

// waitLog waits for the server to log want (handshake errors are logged
// after the client has returned).
func waitLog(t *testing.T, log *syncBuf, want string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(log.String(), want); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("not logged: %s\n%s", want, log.String())
		}
	}
}

func TestServeTLSFlagsGoTogether(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "duplex test CA")
	c1, _ := ca.Server(t, 1)
	err := runServe(context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil)),
		[]string{"--data", dir, "--addr", "127.0.0.1:0", "--tls-cert", certtest.Write(t, dir, "tls.crt", c1)})
	if err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("--tls-cert alone: %v", err)
	}
}

type noQueue struct{}

func (noQueue) QueueStats(context.Context) ([]store.QueueStat, error) { return nil, nil }

// TestConnectorTLS: the generic http connector, through the transport serve
// gives every system (metrics around the base transport), against a
// server whose certificate a private CA signed: refused with a certificate
// error that names --ca-file without the bundle, working with it, and
// counted by the metrics either way.
func TestConnectorTLS(t *testing.T) {
	dir := t.TempDir()
	ca := certtest.NewCA(t, "private CA")
	certPEM, keyPEM := ca.Server(t, 42)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`[{"id": "1", "title": "over TLS", "updated_at": "2026-01-02T03:04:05Z"}]`))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	srv.StartTLS()
	defer srv.Close()
	settings, _ := json.Marshal(map[string]any{"url": srv.URL, "list_path": "/items", "get_path": "/items/{id}"})
	m := metrics.New(noQueue{})

	changes := func(caFile string) (connectors.Page, error) {
		t.Helper()
		base, _, err := tlsconf.ClientTransport(caFile)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := httpconn.New(context.Background(), connectors.Config{Name: "tls-sys", Settings: settings,
			Transport: connectorTransport(m, base)(store.System{ID: 7, Name: "tls-sys"}, nil)})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.Changes(context.Background(), "", 10)
	}

	_, err = changes("")
	var ce *tlsconf.CertError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "x509: certificate signed by unknown authority") ||
		!strings.Contains(err.Error(), "--ca-file") {
		t.Fatalf("without the CA bundle: %v", err)
	}
	t.Logf("without the CA bundle: %v", err)

	page, err := changes(certtest.Write(t, dir, "ca.pem", ca.PEM))
	if err != nil || len(page.Entities) != 1 || page.Entities[0].Fields["title"] != "over TLS" {
		t.Fatalf("with the CA bundle: %v %+v", err, page)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`duplex_connector_requests_total{code="error",method="GET",system="tls-sys",system_id="7"} 1`,
		`duplex_connector_requests_total{code="200",method="GET",system="tls-sys",system_id="7"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics miss %s", want)
		}
	}
}
