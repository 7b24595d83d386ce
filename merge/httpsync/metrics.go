package httpsync

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics (GET /metrics, DESIGN.md,
// "Metrics"). Each Handler has a registry of its own, so that several
// handlers in one process (tests, an app serving two replicas) do not
// collide.
type metrics struct {
	reg         *prometheus.Registry
	served      *prometheus.CounterVec   // by stream: pull, live
	integrated  prometheus.Counter       // by pushes
	syncs       *prometheus.HistogramVec // by op: pull, push, clone; and result
	subscribers prometheus.Gauge         // live connections
	streams     prometheus.Gauge         // live streams
	errors      *prometheus.CounterVec   // by code
}

func newMetrics(h *Handler) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.served = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prophet_changesets_served_total",
		Help: "Changesets sent to peers, by stream: pull (POST /v1/changesets) or live (GET /v1/live).",
	}, []string{"stream"})
	m.integrated = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "prophet_changesets_integrated_total",
		Help: "Changesets integrated from pushes (settlements included).",
	})
	m.syncs = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "prophet_sync_duration_seconds",
		Help:    "How long a sync took on the server, by op (pull: a changeset stream; push; clone: a snapshot) and result (ok or error).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10), // 0.5 ms .. ~2 min
	}, []string{"op", "result"})
	m.subscribers = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prophet_live_subscribers",
		Help: "Open live subscription connections (GET /v1/live).",
	})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "prophet_live_streams",
		Help: "Live subscription streams, over all connections.",
	})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "prophet_errors_total",
		Help: "Error answers, by code (bad_request, unauthorized, conflict, internal, ...).",
	}, []string{"code"})
	latest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "prophet_replica_latest_seq",
		Help: "The last durable sequence number of the served replica's log.",
	}, func() float64 { return float64(h.l.R.LatestSeq()) })
	m.reg.MustRegister(m.served, m.integrated, m.syncs, m.subscribers, m.streams, m.errors, latest,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, s := range []string{"pull", "live"} {
		m.served.WithLabelValues(s)
	}
	return m
}

// observe records a sync of op that started at start.
func (m *metrics) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.syncs.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
