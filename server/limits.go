package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/duplexsync/duplex/peering"
)

// Limits bound what one client can hold of the server: time (header, body,
// response, idle keep-alive), bandwidth (a minimum body rate) and
// connections (per client address). Zero fields take the defaults below;
// docs/operations.md lists them with their flags.
type Limits struct {
	// ReadHeaderTimeout bounds the request line and headers (and a TLS
	// handshake). Default 10 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the whole request, body included. Default 30 s:
	// the largest body (MaxBodyBytes, 1 MiB) needs 35 KB/s to make it.
	ReadTimeout time.Duration
	// WriteTimeout bounds the handler and its answer, from the end of the
	// headers. Default 2 min: a trigger preview reads up to 1000 remote
	// entities.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends nothing.
	// Default 60 s.
	IdleTimeout time.Duration
	// MinBodyRate is the slowest average a body may arrive at, in bytes
	// per second, counted after BodyGrace: a body that falls behind is cut
	// (408 request_timeout). Default 4096; negative turns it off (the
	// ReadTimeout still holds).
	MinBodyRate int64
	// BodyGrace is the head start of a body before MinBodyRate counts.
	// Default 5 s.
	BodyGrace time.Duration
	// MaxConnsPerAddr caps the open connections of one client address;
	// more are closed as soon as they are accepted. Default 128; negative
	// turns it off (behind a reverse proxy every client has its address).
	MaxConnsPerAddr int
}

// WithDefaults fills the zero fields.
func (l Limits) WithDefaults() Limits {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&l.ReadHeaderTimeout, 10*time.Second)
	def(&l.ReadTimeout, 30*time.Second)
	def(&l.WriteTimeout, 2*time.Minute)
	def(&l.IdleTimeout, 60*time.Second)
	def(&l.BodyGrace, 5*time.Second)
	if l.MinBodyRate == 0 {
		l.MinBodyRate = 4096
	}
	if l.MaxConnsPerAddr == 0 {
		l.MaxConnsPerAddr = 128
	}
	return l
}

// NewHTTPServer is the http.Server for handler with l's timeouts. Serve it
// on LimitListener(ln, l.MaxConnsPerAddr).
func NewHTTPServer(handler http.Handler, l Limits, logger *slog.Logger) *http.Server {
	l = l.WithDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &http.Server{Handler: handler,
		ReadHeaderTimeout: l.ReadHeaderTimeout, ReadTimeout: l.ReadTimeout,
		WriteTimeout: l.WriteTimeout, IdleTimeout: l.IdleTimeout,
		// Handshake failures (scanners, clients that distrust the
		// certificate) go to the log at warn level with the server's other
		// errors.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
}

// errSlowBody is a request body that fell behind the minimum rate (or the
// read timeout): 408.
var errSlowBody = errors.New("request body too slow")

// limitBody wraps every request's body in the body limit (enforced while
// reading; a declared Content-Length over it is refused before reading) and
// the minimum rate, so no route can be made to hold a connection and its
// buffer by a body that never ends or never comes. A gin middleware, first
// of all.
func (s *srv) limitBody(c *gin.Context) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody {
		c.Next()
		return
	}
	max := s.max
	if r.URL.Path == "/api/team-templates/import" && importMaxBytes > max {
		max = importMaxBytes
	}
	if strings.HasPrefix(r.URL.Path, "/peer/v1/") {
		max = peering.MaxBody // a peer's own limit, whatever the API's
	}
	if r.ContentLength > max {
		// Not read at all, and the connection is not kept: net/http
		// closes it rather than drain a large unread body.
		c.Header("Connection", "close")
		c.AbortWithStatusJSON(http.StatusRequestEntityTooLarge, apiError{Code: CodeTooLarge,
			Message: fmt.Sprintf("request body over %d bytes", max)})
		return
	}
	body := http.MaxBytesReader(c.Writer, r.Body, max)
	if l := s.limits; l.MinBodyRate > 0 {
		now := time.Now()
		end := time.Time{}
		if l.ReadTimeout > 0 {
			end = now.Add(l.ReadTimeout) // never later than the server's own bound
		}
		body = &rateReader{r: body, rc: http.NewResponseController(c.Writer), start: now, end: end,
			grace: l.BodyGrace, rate: l.MinBodyRate}
	}
	r.Body = body
	c.Next()
}

// rateReader sets the connection's read deadline before each read to the
// moment the body would fall behind rate bytes per second (after grace):
// a client that stalls or trickles is cut at that moment, not when it
// chooses to send again.
type rateReader struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	end   time.Time // the request's read timeout, or zero
	grace time.Duration
	rate  int64
	n     int64
	off   bool // the connection takes no deadline (never on HTTP/1 or 2)
}

func (b *rateReader) Read(p []byte) (int, error) {
	if !b.off {
		due := b.start.Add(b.grace + time.Duration((b.n+1)*int64(time.Second)/b.rate))
		if !b.end.IsZero() && due.After(b.end) {
			due = b.end
		}
		if err := b.rc.SetReadDeadline(due); err != nil {
			b.off = true
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return n, fmt.Errorf("%w: %d bytes in %v, under %d bytes/s", errSlowBody, b.n, time.Since(b.start).Round(time.Millisecond), b.rate)
	}
	return n, err
}

func (b *rateReader) Close() error { return b.r.Close() }

// LimitListener closes, as soon as they are accepted, the connections of a
// client address that already has max open (max <= 0: no cap). Refused
// counts them.
func LimitListener(ln net.Listener, max int) *AddrLimitListener {
	return &AddrLimitListener{Listener: ln, max: max, open: map[string]int{}}
}

// AddrLimitListener is LimitListener's listener.
type AddrLimitListener struct {
	net.Listener
	max     int
	mu      sync.Mutex
	open    map[string]int
	refused atomic.Int64
}

// Refused is how many connections were closed for being over the cap.
func (l *AddrLimitListener) Refused() int64 { return l.refused.Load() }

// Open is how many connections address host has open.
func (l *AddrLimitListener) Open(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[host]
}

// Accept returns the next connection within its address's cap.
func (l *AddrLimitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil || l.max <= 0 {
			return c, err
		}
		host := c.RemoteAddr().String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		l.mu.Lock()
		if l.open[host] >= l.max {
			l.mu.Unlock()
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.open[host]++
		l.mu.Unlock()
		return &addrConn{Conn: c, l: l, host: host}, nil
	}
}

type addrConn struct {
	net.Conn
	l    *AddrLimitListener
	host string
	once sync.Once
}

func (c *addrConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		if c.l.open[c.host]--; c.l.open[c.host] <= 0 {
			delete(c.l.open, c.host)
		}
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}
