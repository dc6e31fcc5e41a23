package delivery

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	// recordsLost counts attempt records the attempts log did not take.
	recordsLost prometheus.Counter
}

// NewMetrics registers delivery's metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
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
		recordsLost: prometheus.NewCounter(prometheus.CounterOpts{Name: "hookstream_delivery_attempt_records_lost_total",
			Help: "Attempt records that could not be sent to the attempts log (JetStream unreachable or too far behind); deliveries are unaffected."}),
	}
	reg.MustRegister(m.deliveries, m.latency, m.pending, m.oldestAge, m.lag, m.deadLetters, m.recordsLost)
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

// forget drops a deleted endpoint's series.
func (m *Metrics) forget(endpoint string) {
	l := prometheus.Labels{"endpoint": endpoint}
	m.deliveries.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.pending.DeletePartialMatch(l)
	m.oldestAge.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.deadLetters.DeletePartialMatch(l)
}
