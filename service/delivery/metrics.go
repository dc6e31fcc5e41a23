package delivery

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// Metrics of outbound delivery, labelled by endpoint id (at most
// delivery.max_endpoints of them). No label or value carries a secret or
// a URL.
type Metrics struct {
	deliveries  *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	pending     *prometheus.GaugeVec
	oldestAge   *prometheus.GaugeVec
	lag         *prometheus.GaugeVec
	deadLetters *prometheus.CounterVec
	state       *prometheus.GaugeVec
	failing     *prometheus.GaugeVec
	// recordsLost counts attempt records the attempts log did not take.
	recordsLost prometheus.Counter
	reg         prometheus.Registerer
	storedDead  *storedDead
}

// NewMetrics registers delivery's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookstream_deliveries_total",
			Help: "Outbound delivery attempts by endpoint and outcome: delivered, retrying, dead_lettered, endpoint_disabled, filter_failed (not sent: the filter failed on the event, which is a dead letter)."}, []string{"endpoint", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hookstream_delivery_attempt_seconds",
			Help:    "Time from sending a delivery to its response headers (or failure), by endpoint and status class.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15, 30}}, []string{"endpoint", "status"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookstream_delivery_queue_depth",
			Help: "Matching events of an endpoint read from the log and not yet delivered or dead-lettered."}, []string{"endpoint"}),
		oldestAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookstream_delivery_oldest_undelivered_seconds",
			Help: "Age of the oldest event an endpoint has read and not yet delivered (0 when none)."}, []string{"endpoint"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookstream_delivery_lag_events",
			Help: "Log positions between the newest event and the last one an endpoint has read (events it has not looked at yet)."}, []string{"endpoint"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookstream_dead_letters_total",
			Help: "Events whose retry schedule ran out, by endpoint."}, []string{"endpoint"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookstream_endpoint_state",
			Help: "1 for an endpoint's current state (active, paused, disabled), reported by the replica that delivers it."}, []string{"endpoint", "state"}),
		failing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hookstream_endpoint_failing_seconds",
			Help: "How long every attempt of an endpoint has failed (0 while it delivers), reported by the replica that delivers it."}, []string{"endpoint"}),
		recordsLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookstream_delivery_attempt_records_lost_total",
			Help: "Attempt records that could not be sent to the attempts log (JetStream unreachable or too far behind); deliveries are unaffected."}),
	}
	reg.MustRegister(m.deliveries, m.latency, m.pending, m.oldestAge, m.lag, m.deadLetters, m.state, m.failing, m.recordsLost)
	return m
}

func (m *Metrics) attempt(endpoint string, r webhook.Result) {
	class := "error"
	if r.Status > 0 {
		class = string(rune('0'+r.Status/100)) + "xx"
	}
	m.latency.WithLabelValues(endpoint, class).Observe(r.Latency.Seconds())
}

func (m *Metrics) delivered(endpoint, outcome string) {
	m.deliveries.WithLabelValues(endpoint, outcome).Inc()
}

func (m *Metrics) progress(endpoint string, pending int, oldest time.Time, lag uint64) {
	m.pending.WithLabelValues(endpoint).Set(float64(pending))
	m.lag.WithLabelValues(endpoint).Set(float64(lag))
	age := 0.0
	if !oldest.IsZero() {
		age = time.Since(oldest).Seconds()
	}
	m.oldestAge.WithLabelValues(endpoint).Set(age)
}

// endpointStates are the values of hookstream_endpoint_state's state label.
var endpointStates = map[hookstreamv1.EndpointState]string{
	hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE:   "active",
	hookstreamv1.EndpointState_ENDPOINT_STATE_PAUSED:   "paused",
	hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED: "disabled",
}

// endpointState sets an endpoint's state series: 1 for st, 0 for the others.
func (m *Metrics) endpointState(endpoint string, st hookstreamv1.EndpointState) {
	for s, name := range endpointStates {
		v := 0.0
		if s == st {
			v = 1
		}
		m.state.WithLabelValues(endpoint, name).Set(v)
	}
}

// failingFor sets how long every attempt of an endpoint has failed.
func (m *Metrics) failingFor(endpoint string, since time.Time) {
	d := 0.0
	if !since.IsZero() {
		d = time.Since(since).Seconds()
	}
	m.failing.WithLabelValues(endpoint).Set(d)
}

// released drops the series only the replica delivering an endpoint
// reports, when another one takes it over (or it is deleted).
func (m *Metrics) released(endpoint string) {
	l := prometheus.Labels{"endpoint": endpoint}
	m.state.DeletePartialMatch(l)
	m.failing.DeletePartialMatch(l)
}

// forget drops a deleted endpoint's series.
func (m *Metrics) forget(endpoint string) {
	l := prometheus.Labels{"endpoint": endpoint}
	m.deliveries.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.pending.DeletePartialMatch(l)
	m.oldestAge.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.deadLetters.DeletePartialMatch(l)
	m.released(endpoint)
}

// storedDead is hookstream_dead_letters_stored: the dead letters each
// endpoint has now (a redrive removes them, retention ages them out), read
// from the dead-letter stream when scraped, at most every
// storedDeadEvery. The stream is shared, so every replica reports the
// same figures.
type storedDead struct {
	desc  *prometheus.Desc
	count func(context.Context) (map[string]uint64, error)

	mu     sync.Mutex
	at     time.Time
	counts map[string]uint64
}

const storedDeadEvery = 2 * time.Second

// countStoredDead registers hookstream_dead_letters_stored, counted by
// count (the engine started last, when several share the metrics).
func (m *Metrics) countStoredDead(count func(context.Context) (map[string]uint64, error)) {
	if m.storedDead != nil {
		m.storedDead.mu.Lock()
		m.storedDead.count, m.storedDead.at = count, time.Time{}
		m.storedDead.mu.Unlock()
		return
	}
	m.storedDead = &storedDead{count: count, desc: prometheus.NewDesc("hookstream_dead_letters_stored",
		"Dead letters an endpoint has now (a redrive removes them; delivery.dead_letter_retention ages them out); the same on every replica.",
		[]string{"endpoint"}, nil)}
	m.reg.MustRegister(m.storedDead)
}

func (c *storedDead) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *storedDead) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) >= storedDeadEvery {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		counts, err := c.count(ctx)
		cancel()
		if err == nil { // else the latest figures stand
			c.counts, c.at = counts, time.Now()
		}
	}
	for ep, n := range c.counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), ep)
	}
}
