// Package metrics exposes Duplex's Prometheus metrics: script run times,
// connector requests (latency, status codes, 429s) measured as they happen,
// and the queue (events by connection and status, oldest waiting event,
// open conflicts, retries) read from the store at scrape time. It uses its
// own registry, made by the caller: no global state.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/duplexsync/duplex/engine/store"
	"github.com/duplexsync/duplex/scripting"
)

// Queue is what the scrape-time collector reads; *store.Store has it.
type Queue interface {
	QueueStats(ctx context.Context) ([]store.QueueStat, error)
}

// Metrics holds the registry and the instruments the engine feeds.
type Metrics struct {
	reg      *prometheus.Registry
	scripts  *prometheus.HistogramVec
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers every metric on a new registry; q feeds the queue figures.
func New(q Queue) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		scripts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duplex_script_run_seconds", Help: "Time of one script or trigger run, by kind and result.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1, 10},
		}, []string{"kind", "result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "duplex_connector_requests_total", Help: "HTTP requests connectors made, by system, method and status code (\"error\" when no answer came).",
		}, []string{"system_id", "system", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "duplex_connector_request_seconds", Help: "Latency of connectors' HTTP requests, by system.",
			Buckets: prometheus.DefBuckets,
		}, []string{"system_id", "system"}),
	}
	m.reg.MustRegister(m.scripts, m.requests, m.latency, &queueCollector{q: q},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Counter exposes a monotonic count kept elsewhere (for example the engine's
// lease takeovers) under name, read at scrape time.
func (m *Metrics) Counter(name, help string, f func() float64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveScript is scripting.Options.Observe.
func (m *Metrics) ObserveScript(kind scripting.Kind, d time.Duration, err error) {
	result := "ok"
	var se *scripting.Error
	switch {
	case err == nil:
	case errors.As(err, &se):
		result = se.Kind // runtime, timeout, memory, compile
	default:
		result = "error"
	}
	m.scripts.WithLabelValues(string(kind), result).Observe(d.Seconds())
}

// Transport wraps next (nil: http.DefaultTransport) to count and time a
// system's requests; it is engine.Options.Transport's answer. Series carry
// the system's id as well as its name: names are unique only within a team,
// and two series with the same labels would fail every scrape.
func (m *Metrics) Transport(systemID int64, system string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &measured{m: m, id: strconv.FormatInt(systemID, 10), system: system, next: next}
}

type measured struct {
	m          *Metrics
	id, system string
	next       http.RoundTripper
}

func (t *measured) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	code := "error"
	if err == nil {
		code = strconv.Itoa(resp.StatusCode)
	}
	t.m.requests.WithLabelValues(t.id, t.system, r.Method, code).Inc()
	t.m.latency.WithLabelValues(t.id, t.system).Observe(time.Since(start).Seconds())
	return resp, err
}

// queueCollector reads the queue at scrape time.
type queueCollector struct{ q Queue }

var (
	eventsDesc = prometheus.NewDesc("duplex_events", "Sync events by connection and status (queued, done, failed, skipped, conflict).",
		[]string{"connection_id", "connection", "status"}, nil)
	attemptsDesc = prometheus.NewDesc("duplex_event_attempts", "Tries of the events in a status, summed: retries show as attempts above the event count.",
		[]string{"connection_id", "connection", "status"}, nil)
	oldestDesc = prometheus.NewDesc("duplex_queue_oldest_seconds", "Age of the oldest queued event per connection.",
		[]string{"connection_id", "connection"}, nil)
	conflictsDesc = prometheus.NewDesc("duplex_conflicts_open", "Events waiting for a person to resolve a conflict, per connection.",
		[]string{"connection_id", "connection"}, nil)
	scrapeErrDesc = prometheus.NewDesc("duplex_queue_scrape_error", "1 when reading the queue for this scrape failed.", nil, nil)
)

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{eventsDesc, attemptsDesc, oldestDesc, conflictsDesc, scrapeErrDesc} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stats, err := c.q.QueueStats(ctx)
	failed := 0.0
	if err != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(scrapeErrDesc, prometheus.GaugeValue, failed)
	// By connection id: names are unique only within a team, and two
	// series with the same labels would fail the whole scrape.
	type conn struct {
		id   string
		name string
	}
	conflicts := map[conn]float64{}
	for _, s := range stats {
		c := conn{strconv.FormatInt(s.ConnectionID, 10), s.Connection}
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.GaugeValue, float64(s.Count), c.id, c.name, s.Status)
		ch <- prometheus.MustNewConstMetric(attemptsDesc, prometheus.GaugeValue, float64(s.Attempts), c.id, c.name, s.Status)
		if s.Status == store.StatusQueued && s.Oldest != nil {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, time.Since(*s.Oldest).Seconds(), c.id, c.name)
		}
		if s.Status == store.StatusConflict {
			conflicts[c] += float64(s.Count)
		} else if _, ok := conflicts[c]; !ok {
			conflicts[c] = 0
		}
	}
	for c, n := range conflicts {
		ch <- prometheus.MustNewConstMetric(conflictsDesc, prometheus.GaugeValue, n, c.id, c.name)
	}
}

// PeerLinkStat is one peer link's counters (docs/peers.md), read at scrape
// time. LinkID 0 (no name) holds what was refused before a link was found.
type PeerLinkStat struct {
	LinkID                           int64
	Name                             string
	Sent, Received, Retries, Refused int64
	LastLagSeconds                   float64
}

// PeerLinks exposes the peer links' counters per link (labels link_id and
// link: names are unique only within a team, so the id keeps two series
// apart), read from f at each scrape.
func (m *Metrics) PeerLinks(f func() []PeerLinkStat) {
	m.reg.MustRegister(&peerCollector{f: f})
}

var (
	peerLabels       = []string{"link_id", "link"}
	peerSentDesc     = prometheus.NewDesc("duplex_peer_messages_sent_total", "Peer link messages delivered to the peer, per link.", peerLabels, nil)
	peerReceivedDesc = prometheus.NewDesc("duplex_peer_messages_received_total", "Peer link messages taken from the peer, per link.", peerLabels, nil)
	peerRetriesDesc  = prometheus.NewDesc("duplex_peer_retries_total", "Peer link deliveries that failed and wait for a retry, per link.", peerLabels, nil)
	peerRefusedDesc  = prometheus.NewDesc("duplex_peer_refused_total", "Peer messages refused (signature, replay, revoked, paused, rate), per link; link_id 0: before a link was found.", peerLabels, nil)
	peerLagDesc      = prometheus.NewDesc("duplex_peer_last_lag_seconds", "Time from queueing to delivery of the link's last message.", peerLabels, nil)
)

type peerCollector struct{ f func() []PeerLinkStat }

func (c *peerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{peerSentDesc, peerReceivedDesc, peerRetriesDesc, peerRefusedDesc, peerLagDesc} {
		ch <- d
	}
}

func (c *peerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.f() {
		id := strconv.FormatInt(s.LinkID, 10)
		ch <- prometheus.MustNewConstMetric(peerSentDesc, prometheus.CounterValue, float64(s.Sent), id, s.Name)
		ch <- prometheus.MustNewConstMetric(peerReceivedDesc, prometheus.CounterValue, float64(s.Received), id, s.Name)
		ch <- prometheus.MustNewConstMetric(peerRetriesDesc, prometheus.CounterValue, float64(s.Retries), id, s.Name)
		ch <- prometheus.MustNewConstMetric(peerRefusedDesc, prometheus.CounterValue, float64(s.Refused), id, s.Name)
		if s.LinkID != 0 {
			ch <- prometheus.MustNewConstMetric(peerLagDesc, prometheus.GaugeValue, s.LastLagSeconds, id, s.Name)
		}
	}
}
