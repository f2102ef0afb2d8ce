package httpapi

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	accepted   prometheus.Counter
	duplicates prometheus.Counter
	rejected   *prometheus.CounterVec
	dropped    prometheus.Counter
	latency    *prometheus.HistogramVec
	// keysInMemory is the number of valid write keys listed in memory.
	keysInMemory prometheus.Gauge
	// bodyMemory is the bytes request bodies hold of the budget.
	bodyMemory prometheus.Gauge
	// busy counts requests refused because the budget could not hold
	// their bodies.
	busy prometheus.Counter
	// folded counts the values the rollups' cardinality caps folded.
	folded *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tk_events_accepted_total",
			Help: "Events stored (committed).",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tk_events_duplicate_total",
			Help: "Events whose id the project already had; not stored again.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tk_events_rejected_total",
			Help: "Invalid events reported in a 200 response, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tk_events_dropped_reported_total",
			Help: "Events that clients reported as dropped from their local queues.",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tk_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "code"}),
		keysInMemory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tk_write_keys_in_memory",
			Help: "Valid write keys the server holds in memory from its last listing.",
		}),
		bodyMemory: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tk_body_memory_bytes",
			Help: "Bytes that request bodies hold of the decode memory budget.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tk_requests_busy_total",
			Help: "Requests refused with 503 because the decode memory budget could not hold their bodies.",
		}),
		folded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tk_rollup_folded_total",
			Help: "Events (or flags) of stored events whose value the rollups' cardinality caps counted under (other), by dimension.",
		}, []string{"dimension"}),
	}
	reg.MustRegister(m.accepted, m.duplicates, m.rejected, m.dropped, m.latency, m.keysInMemory, m.bodyMemory, m.busy,
		m.folded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
