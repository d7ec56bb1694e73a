package api

import "net/http"

// MetricsBackend serves the Prometheus exposition under GET /metrics. A
// Backend that also implements it gets that endpoint, behind the bearer
// token like every endpoint but /healthz. The backend writes the
// exposition, so this package needs no metrics library.
type MetricsBackend interface {
	// Metrics returns the handler that writes the exposition.
	Metrics() http.Handler
}
