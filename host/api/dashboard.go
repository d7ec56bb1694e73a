package api

import (
	_ "embed"
	"net/http"
	"strings"
)

// dashboardPage is the local web dashboard: one page that polls this API
// (docs/dashboard.md).
//
//go:embed dashboard/index.html
var dashboardPage []byte

// dashboardPrefix is where the dashboard is served.
const dashboardPrefix = "/ui/"

// isDashboard says whether path is the dashboard's page, which holds no
// data and so is served without the token; what it shows comes from the
// API, which asks for it.
func isDashboard(path string) bool { return strings.HasPrefix(path, dashboardPrefix) }

func (s *Server) registerDashboard() {
	s.mux.HandleFunc("GET "+dashboardPrefix+"{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// Its own script and style only: nothing loaded from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(dashboardPage)
	})
}
