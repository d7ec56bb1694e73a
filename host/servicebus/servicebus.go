// Package servicebus is the daemon's "servicebus" module, KubeEdge's
// servicebus: HTTP between the cloud and the edge's local services, both
// ways.
//
//   - Cloud → edge: a request from router_servicebus for resource
//     {port}:{path} is handed to the route plugin that receives it (group
//     "route"), else forwarded to http://127.0.0.1:{port}{path} (the
//     built-in default route, edgecore's behaviour), and answered with
//     KubeEdge's HTTPResponse, parent_msg_id set to the request's id.
//   - Edge → cloud: a local listener takes edgecore's
//     {"method","targetURL","payload"}, checks the target against the
//     allow-list the cloud keeps with start and stop messages, sends the
//     request upstream through the hub and answers the app with the
//     cloud's reply in edgecore's JSON.
//
// docs/servicebus.md describes both directions and what differs from
// edgecore; kubeedge-contract.md section 1.5 is KubeEdge's contract.
package servicebus

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/store"
	"github.com/hashicorp/go-hclog"
)

// Names on the bus, KubeEdge's.
const (
	// ModuleName and Group are what the module registers as. KubeEdge
	// puts it in group "bus" beside the eventbus, where beehive's
	// SendToGroup reaches every member; edgehost's SendToGroup picks one,
	// so a group of its own keeps every "bus" message the eventbus's. The
	// hub addresses it by name, as edgecore's edgehub does.
	ModuleName = "servicebus"
	Group      = "servicebus"
	// CloudSource is the route source of the cloud's requests; the module
	// ignores any other (as edgecore does).
	CloudSource = "router_servicebus"
	// UserGroup is the route group of every servicebus message.
	UserGroup = "user"
	// HubGroup is the cloud link's bus group.
	HubGroup = "hub"
	// OpStart and OpStop add and remove an allowed target URL.
	OpStart = "start"
	OpStop  = "stop"
)

// Defaults for the zero fields of Config, edgecore's where it has one.
const (
	DefaultClientTimeout  = 10 * time.Second
	DefaultMaxBodyBytes   = 5_000_000
	DefaultConcurrency    = 64
	DefaultServerAddress  = "127.0.0.1:9060"
	DefaultUpstreamWait   = 60 * time.Second
	DefaultMaxFrameBytes  = 4 << 20
	serverReadHeaderLimit = 10 * time.Second
)

// Errors of the module; every refusal wraps one and is counted by its
// reason (Reasons).
var (
	// ErrBadResource: the resource is not {port}:{path} with exactly one
	// colon and a port 1..65535 (edgecore's 400).
	ErrBadResource = errors.New("bad servicebus resource")
	// ErrBadRequest: the content is not an HTTPRequest (edgecore's 400).
	ErrBadRequest = errors.New("bad servicebus request")
	// ErrRequestTooLarge: the request body is over the body cap.
	ErrRequestTooLarge = errors.New("request body over the cap")
	// ErrResponseTooLarge: the service's response body is over the body
	// cap, or its reply would not fit the cloud link's frame limit.
	ErrResponseTooLarge = errors.New("response body over the cap")
	// ErrTimeout: the local service did not answer within the client
	// timeout.
	ErrTimeout = errors.New("local service timed out")
	// ErrCallFailed: the local service could not be called (edgecore's
	// 404 "error to call service").
	ErrCallFailed = errors.New("error to call service")
	// ErrBusy: the concurrency limit was reached.
	ErrBusy = errors.New("too many servicebus requests in flight")
	// ErrNotAllowed: an edge → cloud target that the cloud has not
	// started.
	ErrNotAllowed = errors.New("target url is not allowed")
	// ErrUpstream: the edge → cloud request got no answer from the cloud.
	ErrUpstream = errors.New("no answer from the cloud")
	// ErrReplyUndelivered: the reply could not be handed to the hub, or
	// the local requester stopped waiting for it.
	ErrReplyUndelivered = errors.New("reply not delivered")
)

// Reason names one kind of refusal in Stats.Refused and the metrics.
type Reason string

// The refusal reasons.
const (
	ReasonBadResource      Reason = "bad_resource"
	ReasonBadRequest       Reason = "bad_request"
	ReasonRequestTooLarge  Reason = "request_too_large"
	ReasonResponseTooLarge Reason = "response_too_large"
	ReasonTimeout          Reason = "timeout"
	ReasonCallFailed       Reason = "call_failed"
	ReasonBusy             Reason = "busy"
	ReasonNotAllowed       Reason = "not_allowed"
	ReasonUpstream         Reason = "upstream"
	ReasonUndelivered      Reason = "reply_undelivered"
	ReasonWrongSource      Reason = "wrong_source"
	ReasonRoute            Reason = "route_failed"
	ReasonRouteRefused     Reason = "route_refused"
)

// Reasons lists every refusal reason, in a stable order.
func Reasons() []Reason {
	return []Reason{ReasonBadResource, ReasonBadRequest, ReasonRequestTooLarge, ReasonResponseTooLarge, ReasonTimeout,
		ReasonCallFailed, ReasonBusy, ReasonNotAllowed, ReasonUpstream, ReasonUndelivered, ReasonWrongSource, ReasonRoute, ReasonRouteRefused}
}

// reasonOf maps an error to its reason.
func reasonOf(err error) Reason {
	for _, r := range []struct {
		err    error
		reason Reason
	}{
		{ErrBadResource, ReasonBadResource}, {ErrBadRequest, ReasonBadRequest}, {ErrRequestTooLarge, ReasonRequestTooLarge},
		{ErrResponseTooLarge, ReasonResponseTooLarge}, {ErrTimeout, ReasonTimeout}, {ErrBusy, ReasonBusy},
		{ErrNotAllowed, ReasonNotAllowed}, {ErrUpstream, ReasonUpstream}, {ErrReplyUndelivered, ReasonUndelivered}, {ErrRoute, ReasonRoute},
		{ErrRouteRefused, ReasonRouteRefused},
	} {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ReasonCallFailed
}

// Config configures the module; zero fields take the defaults.
type Config struct {
	// ClientTimeout bounds one call of a local service (edgecore's 10 s).
	ClientTimeout time.Duration
	// MaxBodyBytes caps request and response bodies, both directions
	// (edgecore's 5 MB).
	MaxBodyBytes int
	// MaxFrameBytes is the cloud link's frame limit: a reply that would
	// encode larger is answered with ErrResponseTooLarge instead of being
	// dropped by the hub.
	MaxFrameBytes int
	// Concurrency bounds the cloud → edge requests served at once; one
	// more is answered with ErrBusy (503).
	Concurrency int
	// Server, if Enable is set, is the edge → cloud listener.
	Server ServerConfig
	// Store keeps the allowed target URLs across restarts; nil keeps them
	// in memory only.
	Store *store.Store
}

// ServerConfig is the edge → cloud listener's.
type ServerConfig struct {
	// Enable turns the listener on (edgecore's servicebus.enable, off by
	// default).
	Enable bool
	// Address is the listener's host:port (edgecore's 127.0.0.1:9060).
	Address string
	// Timeout bounds the wait for the cloud's answer (edgecore's 60 s).
	Timeout time.Duration
}

func (c *Config) defaults() {
	if c.ClientTimeout <= 0 {
		c.ClientTimeout = DefaultClientTimeout
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxFrameBytes <= 0 {
		c.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.Server.Address == "" {
		c.Server.Address = DefaultServerAddress
	}
	if c.Server.Timeout <= 0 {
		c.Server.Timeout = DefaultUpstreamWait
	}
}

// Stats are the module's counters.
type Stats struct {
	// Requests counts cloud → edge requests taken, Answered those answered
	// with the service's (or route plugin's) own response, Routed those a
	// route plugin took, InFlight those being served now.
	Requests, Answered, Routed uint64
	InFlight                   int64
	// Upstream counts edge → cloud requests sent, UpstreamAnswered those
	// the cloud answered.
	Upstream, UpstreamAnswered uint64
	// Targets is how many target URLs are allowed now.
	Targets int
	// Refused counts refusals by reason; every reason is present.
	Refused map[Reason]uint64
	// Duration sums the seconds spent serving answered cloud → edge
	// requests, for a mean per request.
	Duration float64
}

// Module is the servicebus. Create it with New and run it under the
// supervisor.
type Module struct {
	bus    *bus.Bus
	cfg    Config
	log    hclog.Logger
	client *http.Client
	slots  chan struct{}
	tgts   *targets

	requests, answered, routed, upstream, upAnswered atomic.Uint64
	inFlight                                         atomic.Int64
	nanos                                            atomic.Int64

	mu      sync.Mutex
	refused map[Reason]uint64
	warned  map[Reason]bool
	wg      sync.WaitGroup
}

// New returns the servicebus over b.
func New(b *bus.Bus, cfg Config, log hclog.Logger) *Module {
	cfg.defaults()
	if log == nil {
		log = hclog.NewNullLogger()
	}
	// Local services only: no proxy from the environment, and a redirect
	// is answered as the service sent it, as the cloud's caller should see.
	client := &http.Client{Timeout: cfg.ClientTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	m := &Module{bus: b, cfg: cfg, log: log.Named("servicebus"), client: client, slots: make(chan struct{}, cfg.Concurrency),
		refused: map[Reason]uint64{}, warned: map[Reason]bool{}}
	m.tgts = newTargets(cfg.Store)
	return m
}

// Name implements supervisor.Module.
func (m *Module) Name() string { return ModuleName }

// Run implements supervisor.Module: it serves the cloud's requests and,
// if enabled, the edge → cloud listener until ctx ends.
func (m *Module) Run(ctx context.Context, ready func()) error {
	if err := m.tgts.load(); err != nil {
		return err
	}
	ep, err := m.bus.Register(ModuleName, Group)
	if err != nil {
		return err
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer m.wg.Wait()
	if m.cfg.Server.Enable {
		srv, err := m.listen(ctx)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	ready()
	m.log.Info("servicebus ready", "server", m.cfg.Server.Enable, "address", m.cfg.Server.Address, "targets", m.tgts.len())
	for {
		msg, err := ep.Receive(ctx)
		if err != nil {
			return nil
		}
		m.handle(ctx, msg)
	}
}

// handle takes one message from the bus. A request someone on the bus
// waits for (`edgehost send`, through the admin API) is answered to that
// requester, decided on receipt; any other, the cloud's, through the hub.
func (m *Module) handle(ctx context.Context, msg abi.Message) {
	r := msg.Route
	local := msg.Header.Sync && m.bus.Waiting(msg.Header.ID)
	switch {
	case r.Source != CloudSource:
		// edgecore's servicebus ignores every other source; a local
		// requester is told why, rather than left waiting.
		err := errors.New("message from source " + r.Source + " ignored: the servicebus takes requests from source " + CloudSource)
		m.refuse(ReasonWrongSource, err, &msg)
		if local {
			m.reply(ctx, msg, true, localAnswer(msg, err))
		}
	case r.Operation == OpStart || r.Operation == OpStop:
		err := m.allow(msg)
		if local {
			m.reply(ctx, msg, true, localAnswer(msg, err))
		}
	default:
		select {
		case m.slots <- struct{}{}:
		default:
			m.requests.Add(1)
			m.fail(ctx, msg, local, http.StatusServiceUnavailable, ErrBusy)
			return
		}
		m.requests.Add(1)
		m.inFlight.Add(1)
		m.wg.Go(func() {
			defer func() {
				<-m.slots
				m.inFlight.Add(-1)
			}()
			m.serveCloud(ctx, msg, local)
		})
	}
}

// localAnswer is the answer to a local requester's message that is not
// an HTTP request: operation response "OK", or error with err's text.
func localAnswer(msg abi.Message, err error) abi.Message {
	r := abi.Message{Header: abi.Header{ParentID: msg.Header.ID},
		Route: abi.Route{Source: ModuleName, Group: UserGroup, Operation: abi.OpResponse, Resource: msg.Route.Resource}, Content: []byte("OK")}
	if err != nil {
		r.Route.Operation, r.Content = abi.OpError, []byte("servicebus: "+err.Error())
	}
	return r
}

// allow applies a start or stop of a target URL.
func (m *Module) allow(msg abi.Message) error {
	url := msg.Route.Resource
	var err error
	if msg.Route.Operation == OpStart {
		err = m.tgts.add(url)
	} else {
		err = m.tgts.remove(url)
	}
	if err != nil {
		m.log.Warn("target url not updated", "operation", msg.Route.Operation, "url", url, "error", err)
		return fmt.Errorf("%s target url %q: %w", msg.Route.Operation, url, err)
	}
	m.log.Info("target url "+msg.Route.Operation, "url", url, "targets", m.tgts.len())
	return nil
}

// refuse counts a refusal and logs its first occurrence of a kind at WARN,
// the rest at DEBUG.
func (m *Module) refuse(reason Reason, err error, msg *abi.Message) {
	m.mu.Lock()
	m.refused[reason]++
	first := !m.warned[reason]
	m.warned[reason] = true
	m.mu.Unlock()
	args := []any{"reason", string(reason), "error", err}
	if msg != nil {
		args = append(args, "msg_id", msg.Header.ID, "operation", msg.Route.Operation, "resource", msg.Route.Resource)
	}
	if first {
		m.log.Warn("servicebus request refused (further ones at debug level; see /metrics)", args...)
		return
	}
	m.log.Debug("servicebus request refused", args...)
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	s := Stats{Requests: m.requests.Load(), Answered: m.answered.Load(), Routed: m.routed.Load(), InFlight: m.inFlight.Load(),
		Upstream: m.upstream.Load(), UpstreamAnswered: m.upAnswered.Load(), Targets: m.tgts.len(),
		Duration: time.Duration(m.nanos.Load()).Seconds(), Refused: map[Reason]uint64{}}
	m.mu.Lock()
	for _, r := range Reasons() {
		s.Refused[r] = m.refused[r]
	}
	m.mu.Unlock()
	return s
}
