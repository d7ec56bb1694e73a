// Package api is edgehost's local admin API: HTTP over a unix socket (mode
// 0600) by default, and optionally over TCP behind a bearer token. The CLI
// is its first client; docs/api.md documents it.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/hashicorp/go-hclog"
)

// Backend is what the API serves: the daemon implements it.
type Backend interface {
	// Status returns the daemon's state.
	Status() Status
	// Inject puts a message on the bus and, if asked, waits for its reply.
	Inject(ctx context.Context, req InjectRequest) (*abi.Message, error)
}

// Status is the document /v1/status returns.
type Status struct {
	Version string `json:"version"`
	Ready   bool   `json:"ready"`
	// NotReady says why Ready is false, a reason each: a module not
	// running, a plugin that failed to load or is quarantined, no twin
	// plugin, an unreachable external broker.
	NotReady  []string       `json:"not_ready,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	Modules   []ModuleStatus `json:"modules"`
	Plugins   []PluginStatus `json:"plugins"`
	Bus       []BusStats     `json:"bus"`
	// EventBus is what the eventbus delivered and lost, by subscriber and
	// by MQTT client; nil when the daemon runs no eventbus.
	EventBus *EventBusStatus `json:"eventbus,omitempty"`
	// Pods counts the container runtime's pods by phase; nil when the
	// daemon runs no runtime (modules.edged).
	Pods *PodsSummary `json:"pods,omitempty"`
}

// PodsSummary is how many pods the runtime drives, in all and by the
// phase last reported (Pending, Running, Succeeded, Failed).
type PodsSummary struct {
	Total  int            `json:"total"`
	Phases map[string]int `json:"phases"`
}

// EventBusStatus is the eventbus's delivery counters.
type EventBusStatus struct {
	// Subscribers has one entry per subscriber queue: a plugin's
	// subscription to a filter, or the bridge (empty filter).
	Subscribers []SubscriberStatus `json:"subscribers"`
	// ClientInflightDropped and ClientWritesDropped count messages the
	// embedded broker dropped for clients at their in-flight limit or
	// their limit of packets waiting to be written.
	ClientInflightDropped uint64 `json:"client_inflight_dropped"`
	ClientWritesDropped   uint64 `json:"client_writes_dropped"`
}

// SubscriberStatus is one subscriber queue's counters.
type SubscriberStatus struct {
	Subscriber string `json:"subscriber"`
	Filter     string `json:"filter"`
	Delivered  uint64 `json:"delivered"`
	Dropped    uint64 `json:"dropped"`
	Refused    uint64 `json:"refused"`
	QueueDepth int    `json:"queue_depth"`
}

// ModuleStatus is one daemon module's lifecycle state.
type ModuleStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Restarts  int       `json:"restarts"`
	LastError string    `json:"last_error,omitempty"`
	Since     time.Time `json:"since"`
}

// PluginStatus is one loaded plugin's state.
type PluginStatus struct {
	Name             string    `json:"name"`
	Version          string    `json:"version,omitempty"`
	State            string    `json:"state"`
	Instances        int       `json:"instances"`
	MemoryPages      int       `json:"memory_pages"`
	ModuleBytes      int       `json:"module_bytes,omitempty"`
	Calls            uint64    `json:"calls"`
	Faults           uint64    `json:"faults"`
	Denied           uint64    `json:"denied"`
	HeldFailed       uint64    `json:"held_failed"`
	MQTTDropped      uint64    `json:"mqtt_dropped"`
	TickFailed       uint64    `json:"tick_failed"`
	Loops            uint64    `json:"loops"`
	LastFault        string    `json:"last_fault,omitempty"`
	QuarantinedUntil time.Time `json:"quarantined_until,omitzero"`
	Receives         []string  `json:"receives,omitempty"`
}

// BusStats are one bus module's counters.
type BusStats struct {
	Name       string `json:"name"`
	Group      string `json:"group"`
	Sent       uint64 `json:"sent"`
	Received   uint64 `json:"received"`
	Failed     uint64 `json:"failed"`
	QueueDepth int    `json:"queue_depth"`
}

// InjectRequest is the body of POST /v1/messages.
type InjectRequest struct {
	// To names the receiving module; with Broadcast, the group that gets it.
	To string `json:"to"`
	// Broadcast sends to every module of the group named by To.
	Broadcast bool `json:"broadcast,omitempty"`
	// Wait asks for the reply (the message is sent as a request).
	Wait bool `json:"wait,omitempty"`
	// Timeout bounds the wait, as a Go duration ("5s"); default 10s.
	Timeout string      `json:"timeout,omitempty"`
	Message MessageJSON `json:"message"`

	// Parsed is Message decoded; set by the server before Inject.
	Parsed abi.Message `json:"-"`
	// Deadline is Timeout parsed; set by the server before Inject.
	Deadline time.Duration `json:"-"`
}

// InjectResponse is the answer of POST /v1/messages.
type InjectResponse struct {
	ID    string       `json:"msg_id"`
	Reply *MessageJSON `json:"reply,omitempty"`
	// Failure is set when the reply is the host's failure reply (the
	// plugin faulted, returned a code, is quarantined...), which comes
	// with an HTTP status other than 200 (failureStatus).
	Failure *abi.Failure `json:"failure,omitempty"`
	// Error repeats the failure's text, as every error body has one.
	Error string `json:"error,omitempty"`
	// Code is the error's stable code, as in every error body (errorCode).
	Code string `json:"code,omitempty"`
}

// maxBody bounds request bodies (a message plus some JSON).
const maxBody = 8 << 20

// Server serves the admin API. Create with New.
type Server struct {
	backend Backend
	token   string
	log     hclog.Logger
	mux     *http.ServeMux
}

// New returns a server for backend. A non-empty token is required as
// "Authorization: Bearer <token>" on every request except /healthz.
func New(backend Backend, token string, log hclog.Logger) *Server {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{backend: backend, token: token, log: log, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /v1/status", s.status)
	s.mux.HandleFunc("POST /v1/messages", s.messages)
	s.registerDashboard()
	if token == "" {
		// The unix socket only (a TCP listener always has a token): Go's
		// profiles, for an operator asking where memory or CPU goes.
		s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	if pb, ok := backend.(PluginBackend); ok {
		s.registerPlugins(pb)
	}
	if pr, ok := backend.(PluginReloader); ok {
		s.registerPluginReload(pr)
	}
	if sb, ok := backend.(StoreBackend); ok {
		s.registerStore(sb)
	}
	if db, ok := backend.(DevicesBackend); ok {
		s.registerDevices(db)
	}
	if db, ok := backend.(MappedDevicesBackend); ok {
		s.registerMappedDevices(db)
	}
	if tb, ok := backend.(TwinsBackend); ok {
		s.registerTwins(tb)
	}
	if mb, ok := backend.(MetaBackend); ok {
		s.registerMeta(mb)
	}
	if pb, ok := backend.(PodsBackend); ok {
		s.registerPods(pb)
	}
	if ib, ok := backend.(ImagesBackend); ok {
		s.registerImages(ib)
	}
	if mb, ok := backend.(MetricsBackend); ok {
		s.mux.Handle("GET /metrics", mb.Metrics())
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.token != "" && r.URL.Path != "/healthz" && !isDashboard(r.URL.Path) {
		want := "Bearer " + s.token
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
	}
	// One limit for every endpoint, so a body too large is a 413 wherever
	// it is sent, and refused before it is read when its length is known.
	limit := int64(maxBody)
	switch r.URL.Path {
	case "/v1/plugins":
		limit = maxPackage
	case "/v1/images":
		limit = maxImageArchive
	}
	if r.ContentLength > limit {
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%s %s: body of %d bytes is over the limit of %d", r.Method, r.URL.Path, r.ContentLength, limit))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.notRouted(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	st := s.backend.Status()
	if !st.Ready {
		notReady := st.NotReady
		if notReady == nil {
			notReady = []string{}
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "not_ready": notReady})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ready": true})
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.Status())
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	var req InjectRequest
	dec := json.NewDecoder(r.Body) // bounded by ServeHTTP
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("message request over %d bytes", maxBody))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("decode message request: %w", err))
		return
	}
	if req.To == "" {
		writeError(w, http.StatusBadRequest, errors.New(`message request: "to" is required`))
		return
	}
	req.Deadline = 10 * time.Second
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("message request: timeout %q is not a positive duration", req.Timeout))
			return
		}
		req.Deadline = d
	}
	m, err := FromJSON(&req.Message)
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	req.Parsed = m
	ctx, cancel := context.WithTimeout(r.Context(), req.Deadline)
	defer cancel()
	reply, err := s.backend.Inject(ctx, req)
	if err != nil {
		// The bus's errors carry their code for errors.Is (abi.NewError),
		// not as an abi.Code value errors.As would find.
		status := http.StatusBadGateway
		switch {
		case errors.Is(err, abi.Unavailable):
			status = http.StatusNotFound
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, abi.Timeout):
			status = http.StatusGatewayTimeout
		}
		writeError(w, status, err)
		return
	}
	resp := InjectResponse{ID: req.Parsed.Header.ID}
	status := http.StatusOK
	if reply != nil {
		resp.ID = reply.Header.ParentID
		j := ToJSON(reply)
		resp.Reply = &j
		if f, ok := abi.ParseFailure(*reply); ok {
			resp.Failure, resp.Error, status = &f, f.String(), failureStatus(f)
			resp.Code = errorCode(status)
		}
	}
	writeJSON(w, status, resp)
}

// failureStatus is the HTTP status of a host failure reply.
func failureStatus(f abi.Failure) int {
	switch f.Reason {
	case abi.FailureTooLarge:
		return http.StatusRequestEntityTooLarge
	case abi.FailureNoReceiver:
		return http.StatusNotFound
	case abi.FailureLoop:
		return http.StatusLoopDetected
	case abi.FailureQuarantined, abi.FailureUnavailable:
		return http.StatusServiceUnavailable
	case abi.FailureTimeout:
		return http.StatusGatewayTimeout
	case abi.FailureCode:
		switch f.Code {
		case abi.NoHandler:
			return http.StatusNotFound
		case abi.Timeout:
			return http.StatusGatewayTimeout
		case abi.Busy, abi.Unavailable:
			return http.StatusServiceUnavailable
		}
	}
	return http.StatusBadGateway // a fault, or a code from the plugin
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// Not indented: indenting would rewrite JSON message content.
	json.NewEncoder(w).Encode(v)
}

// ErrorBody is every error reply of the API: the error's text and a stable
// code for scripts (docs/api.md).
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, ErrorBody{Error: err.Error(), Code: errorCode(status)})
}

// errorCode is the stable code of an HTTP error status.
func errorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "bad_request"
	case http.StatusUnauthorized:
		return "unauthorized"
	case http.StatusNotFound:
		return "not_found"
	case http.StatusMethodNotAllowed:
		return "method_not_allowed"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too_large"
	case http.StatusUnprocessableEntity:
		return "invalid"
	case http.StatusLoopDetected:
		return "loop"
	case http.StatusBadGateway:
		return "failed"
	case http.StatusServiceUnavailable:
		return "unavailable"
	case http.StatusGatewayTimeout:
		return "timeout"
	}
	return "internal"
}

// notRouted answers a request no route takes, which ServeMux would answer
// in text/plain: 404 for an unknown path, 405 with Allow for a known path
// and another method.
func (s *Server) notRouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if rec.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", rec.header.Get("Allow"))
		writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("%s %s: method not allowed; allowed: %s", r.Method, r.URL.Path, rec.header.Get("Allow")))
		return
	}
	if rec.status != http.StatusNotFound {
		// ServeMux's redirect to the path with a trailing slash.
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.status)
		return
	}
	writeError(w, http.StatusNotFound, fmt.Errorf("%s: no such endpoint (docs/api.md)", r.URL.Path))
}

// statusRecorder keeps the status and headers ServeMux's own 404 and 405
// handlers write, dropping their text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// ListenUnix listens on a unix socket at path with mode 0600, replacing a
// stale socket left by a daemon that did not shut down cleanly.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %q: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %q: another daemon is listening on it", path)
		}
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("admin socket %q: %w", path, err)
	}
	return l, nil
}

// Serve serves s on l until ctx is cancelled, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	// IdleTimeout closes keep-alive connections a client left open: without
	// it each one holds a goroutine and a file descriptor for ever (a soak
	// run whose client leaked them showed both climbing).
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin api on %s: %w", l.Addr(), err)
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
		<-errc
		return nil
	}
}
