package service

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookstream/hookstream/service/budget"
)

// Metrics are hookstream's Prometheus metrics. Labels never carry secrets
// or payload values: sources are configured names (requests for unknown
// sources count under "_unknown"), reasons are enum names.
type Metrics struct {
	webhooks       *prometheus.CounterVec
	ingestLatency  *prometheus.HistogramVec
	duplicates     *prometheus.CounterVec
	clientGone     *prometheus.CounterVec
	quarantined    *prometheus.CounterVec
	quarantineFull *prometheus.CounterVec
	authFailures   *prometheus.CounterVec
	appendLatency  prometheus.Histogram
	subscribers    prometheus.Gauge
	lag            *prometheus.GaugeVec
	rpcs           *prometheus.CounterVec
	getReads       prometheus.Histogram
	// streamsRefused counts Subscribe streams refused at a cap; buffers is
	// the stream buffer budget, once the services exist.
	streamsRefused prometheus.Counter
	buffers        atomic.Pointer[budget.Budget]
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_webhook_requests_total",
			Help: "Webhook requests by source and outcome (accepted, duplicate, quarantined, unauthenticated, unknown_source, rate_limited, unavailable, invalid).",
		}, []string{"source", "outcome"}),
		ingestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_ingest_duration_seconds",
			Help:    "Time from a webhook reaching the ingest handler to its answer, by source.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_duplicates_total",
			Help: "Webhooks whose event was already in the log (vendor retries), by source.",
		}, []string{"source"}),
		clientGone: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_webhook_client_gone_total",
			Help: "Webhook requests whose caller disconnected or timed out before the answer, by source; each is also counted under its outcome in hookstream_webhook_requests_total.",
		}, []string{"source"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_quarantined_total",
			Help: "Webhooks quarantined, by source and rejection code.",
		}, []string{"source", "code"}),
		quarantineFull: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_quarantine_full_total",
			Help: "Webhooks refused with 503 because they needed quarantine and it was full (counted under outcome unavailable too), by source.",
		}, []string{"source"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_auth_failures_total",
			Help: "Failed authentications: webhook sources (reason missing or wrong) and API tokens (source \"_api\").",
		}, []string{"source", "reason"}),
		appendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_log_append_duration_seconds",
			Help:    "Time for the event log to acknowledge an append.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hookstream_subscribers",
			Help: "Open Subscribe streams.",
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hookstream_subscriber_lag_events",
			Help: "Events matching a subscriber's subject filter that it has not received yet, by subscriber (a per-stream id, as logged).",
		}, []string{"subscriber"}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_rpcs_total",
			Help: "RPCs (gRPC and HTTP gateway alike) by method and status code.",
		}, []string{"method", "code"}),
		getReads: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hookstream_get_event_log_reads",
			Help:    "Log reads per GetEvent: 1 for an id of the dedup window, up to log.lookup_budget for older or unknown ids.",
			Buckets: []float64{0, 1, 2, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144},
		}),
	}
	m.streamsRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "hookstream_subscribe_refused_total",
		Help: "Subscribe streams refused because the server or the caller's API token had its maximum of open streams.",
	})
	buffered := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookstream_subscribe_buffered_bytes",
		Help: "Bytes of events held by Subscribe streams beyond their live queues (catch-up reads, events not yet written to the client), against subscribe.buffer_budget.",
	}, func() float64 {
		if b := m.buffers.Load(); b != nil {
			return float64(b.Used())
		}
		return 0
	})
	reg.MustRegister(m.webhooks, m.ingestLatency, m.duplicates, m.clientGone, m.quarantined, m.quarantineFull, m.authFailures, m.appendLatency,
		m.subscribers, m.lag, m.rpcs, m.getReads, m.streamsRefused, buffered)
	return m
}
