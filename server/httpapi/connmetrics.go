package httpapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Why a [ConnLimiter] closed a connection, as the reason label of
// tk_connections_closed_total.
const (
	reasonMakeRoom = "make_room" // the idle one closed to make room for a new one
	reasonPressure = "pressure"  // idle for PressureIdleTimeout with more than 3/4 of the cap open
	reasonFDLimit  = "fd_limit"  // accept ran out of file descriptors
)

// ConnMetrics are the metrics of [ConnLimiter]s, labelled by listener
// ([ConnLimitConfig.Name]); the limiters of several listeners share one.
type ConnMetrics struct {
	open        *prometheus.GaugeVec
	max         *prometheus.GaugeVec
	refused     *prometheus.CounterVec
	closed      *prometheus.CounterVec
	httpRefused *prometheus.CounterVec
}

// NewConnMetrics registers the connection metrics in reg:
//
//	tk_connections_open{listener}               gauge
//	tk_connections_max{listener}                gauge
//	tk_connections_refused_total{listener,reason} counter (reason "busy": every connection had a request in progress; answered 503)
//	tk_connections_closed_total{listener,reason}  counter (idle connections closed: make_room, pressure, fd_limit)
//	tk_http_refused_total{listener,code}        counter (requests net/http refused by itself, before any handler)
func NewConnMetrics(reg *prometheus.Registry) *ConnMetrics {
	m := &ConnMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tk_connections_open",
			Help: "Client connections open now.",
		}, []string{"listener"}),
		max: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tk_connections_max",
			Help: "Most client connections open at once: the cap.",
		}, []string{"listener"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tk_connections_refused_total",
			Help: "Connections answered 503 and closed at accept because the cap was reached and none was idle.",
		}, []string{"listener", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tk_connections_closed_total",
			Help: "Idle connections the server closed before their idle timeout: to make room for a new one, under pressure, or when accept ran out of file descriptors.",
		}, []string{"listener", "reason"}),
		httpRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tk_http_refused_total",
			Help: "Requests net/http refused by itself before any handler ran (431, 400, 501, 505, 417), by status code.",
		}, []string{"listener", "code"}),
	}
	reg.MustRegister(m.open, m.max, m.refused, m.closed, m.httpRefused)
	return m
}

// connMetrics are one listener's; a nil *connMetrics counts nothing.
type connMetrics struct {
	open, max                   prometheus.Gauge
	refusedBusy                 prometheus.Counter
	makeRoom, pressure, fdLimit prometheus.Counter
	httpCodes                   *prometheus.CounterVec
}

func (m *ConnMetrics) forListener(name string) *connMetrics {
	if m == nil {
		return nil
	}
	return &connMetrics{
		open:        m.open.WithLabelValues(name),
		max:         m.max.WithLabelValues(name),
		refusedBusy: m.refused.WithLabelValues(name, "busy"),
		makeRoom:    m.closed.WithLabelValues(name, reasonMakeRoom),
		pressure:    m.closed.WithLabelValues(name, reasonPressure),
		fdLimit:     m.closed.WithLabelValues(name, reasonFDLimit),
		httpCodes:   m.httpRefused.MustCurryWith(prometheus.Labels{"listener": name}),
	}
}

func (m *connMetrics) setMax(n int) {
	if m != nil {
		m.max.Set(float64(n))
	}
}

// opened adds n (negative: removes) to the open connections.
func (m *connMetrics) opened(n int) {
	if m != nil && n != 0 {
		m.open.Add(float64(n))
	}
}

func (m *connMetrics) refused() {
	if m != nil {
		m.refusedBusy.Inc()
	}
}

func (m *connMetrics) closed(reason string, n int) {
	if m == nil || n == 0 {
		return
	}
	switch reason {
	case reasonMakeRoom:
		m.makeRoom.Add(float64(n))
	case reasonPressure:
		m.pressure.Add(float64(n))
	case reasonFDLimit:
		m.fdLimit.Add(float64(n))
	}
}

func (m *connMetrics) httpRefused(code int) {
	if m != nil {
		m.httpCodes.WithLabelValues(strconv.Itoa(code)).Inc()
	}
}
