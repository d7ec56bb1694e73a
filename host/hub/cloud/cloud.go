// Package cloud is edgehost's reference cloud side of the link, served by
// `edgehost hub serve`: a websocket server that speaks cloudhub's protocol
// (mutual TLS, one beehive JSON message per text frame, the edge's
// keepalive checked) and a certificate service that bootstraps nodes with
// a token, as CloudCore's does on port 10002. It is meant for tests, labs
// and sites without a Kubernetes control plane; it keeps no objects of its
// own but the packages pushed for nodes to fetch, remembers what nodes
// reported (in memory) and routes nothing onwards but the nodes'
// servicebus requests, which it makes itself (docs/hub.md,
// docs/servicebus.md).
package cloud

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/edgehost/edgehost/host/pluginsync"
	"github.com/gorilla/websocket"
	"github.com/hashicorp/go-hclog"
)

// Defaults for zero Options fields, CloudCore's.
const (
	DefaultKeepaliveTimeout = 30 * time.Second
	DefaultResendInterval   = 5 * time.Second
	maxFrameBytes           = 8 << 20
)

// ErrNoNode is returned by Send for a node that is not connected.
var ErrNoNode = errors.New("node not connected")

// Options configure a Server.
type Options struct {
	// Dir holds the CA (created on first use).
	Dir string
	// Hosts are the names and IPs in the server certificate.
	Hosts []string
	// KeepaliveTimeout ends a session that sent no keepalive for that
	// long.
	KeepaliveTimeout time.Duration
	// ResendInterval is how often SendReliable sends again.
	ResendInterval time.Duration
	// NodeCertLifetime is how long a node certificate it signs is valid
	// (certs.DefaultNodeCertLifetime when 0).
	NodeCertLifetime time.Duration
	// Record, if set, receives every frame as one JSON line in the form
	// of captured/edgecore-ws-frames.jsonl.
	Record io.Writer
	// Logger receives the server's log lines; nil discards them.
	Logger hclog.Logger
}

// Server is the reference cloud.
type Server struct {
	opts Options
	ca   *certs.CA
	cert tls.Certificate
	log  hclog.Logger

	handlers sync.WaitGroup // link handlers still running
	mu       sync.Mutex
	closing  bool // ServeWebsocket is returning; under mu
	sessions map[string]*session
	acks     map[string]chan struct{} // msg id → closed when ACKed
	replies  map[string]chan Received // msg id → its Request's reply
	forwards sync.WaitGroup           // servicebus target calls running
	reports  map[string]*NodeReport   // by node
	recMu    sync.Mutex
	received chan Received
}

// Received is one message a node sent.
type Received struct {
	Node  string
	Frame []byte
	wire.Decoded
}

// New loads or creates the CA in opts.Dir and issues the server
// certificate.
func New(opts Options) (*Server, error) {
	if opts.KeepaliveTimeout <= 0 {
		opts.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if opts.ResendInterval <= 0 {
		opts.ResendInterval = DefaultResendInterval
	}
	if opts.NodeCertLifetime <= 0 {
		opts.NodeCertLifetime = certs.DefaultNodeCertLifetime
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	ca, err := certs.LoadOrCreateCA(opts.Dir)
	if err != nil {
		return nil, err
	}
	cert, err := ca.ServerCert(opts.Hosts)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, ca: ca, cert: cert, log: opts.Logger.Named("cloud"),
		sessions: map[string]*session{}, acks: map[string]chan struct{}{}, replies: map[string]chan Received{}, reports: map[string]*NodeReport{}, received: make(chan Received, 1024)}, nil
}

// CA returns the server's certificate authority.
func (s *Server) CA() *certs.CA { return s.ca }

// Received delivers what nodes send, dropping the oldest when nobody
// reads; it is for tests and `hub serve --record`.
func (s *Server) Received() <-chan Received { return s.received }

// ServeWebsocket serves the link on ln (cloudhub's port 10000) until ctx
// ends.
func (s *Server) ServeWebsocket(ctx context.Context, ln net.Listener) error {
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{s.cert}, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: s.ca.Pool(), MinVersion: tls.VersionTLS12}
	err := s.serve(ctx, tls.NewListener(ln, tlsCfg), http.HandlerFunc(s.handleLink))
	// The sessions are hijacked connections the http.Server no longer
	// tracks: close them and wait for their handlers.
	s.mu.Lock()
	s.closing = true
	for _, sess := range s.sessions {
		sess.conn.Close()
	}
	s.mu.Unlock()
	s.handlers.Wait()
	s.forwards.Wait()
	return err
}

// ServeCertificates serves the certificate service on ln (port 10002)
// until ctx ends.
func (s *Server) ServeCertificates(ctx context.Context, ln net.Listener) error {
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{s.cert}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ca.crt", func(w http.ResponseWriter, _ *http.Request) { w.Write(s.ca.DER()) })
	mux.HandleFunc("GET /edge.crt", s.handleSign)
	return s.serve(ctx, tls.NewListener(ln, tlsCfg), mux)
}

func (s *Server) serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// handleSign signs a node's CSR (DER body) for a valid bearer token or a
// node client certificate (rotation).
func (s *Server) handleSign(w http.ResponseWriter, r *http.Request) {
	node := r.Header.Get("NodeName")
	authorized := false
	if jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		if err := s.ca.CheckToken(jwt); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		authorized = true
	} else if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		peer := r.TLS.PeerCertificates[0]
		_, err := peer.Verify(x509.VerifyOptions{Roots: s.ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err == nil && peer.Subject.CommonName == certs.NodeCNPrefix+node && slices.Contains(peer.Subject.Organization, certs.NodeOrg) {
			authorized = true
		}
	}
	if !authorized {
		http.Error(w, "unauthorized: no valid token or node certificate", http.StatusUnauthorized)
		return
	}
	csr, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "read CSR: "+err.Error(), http.StatusBadRequest)
		return
	}
	der, err := s.ca.SignNode(csr, node, s.opts.NodeCertLifetime)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, certs.ErrUnauthorized) {
			status = http.StatusUnauthorized
		}
		http.Error(w, err.Error(), status)
		return
	}
	s.log.Info("node certificate signed", "node", node)
	w.Write(der)
}

var upgrader = websocket.Upgrader{HandshakeTimeout: 30 * time.Second}

// handleLink upgrades one node's connection and serves it.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1) // under mu, so never after Wait began
	s.mu.Unlock()
	defer s.handlers.Done()
	node := r.Header.Get("node_id")
	if node == "" || r.Header.Get("ConnectionUse") != "msg" {
		http.Error(w, "want headers node_id and ConnectionUse: msg", http.StatusBadRequest)
		return
	}
	if r.TLS == nil || len(r.TLS.PeerCertificates) != 1 || r.TLS.PeerCertificates[0].Subject.CommonName != certs.NodeCNPrefix+node {
		http.Error(w, "the client certificate is not for node "+node, http.StatusUnauthorized)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Warn("upgrade failed", "node", node, "error", err)
		return
	}
	s.record("event", node, "connect", r.Header)
	sess := &session{srv: s, node: node, conn: conn, out: make(chan outFrame, 1024), done: make(chan struct{})}
	s.mu.Lock()
	old := s.sessions[node]
	s.sessions[node] = sess
	s.mu.Unlock()
	if old != nil {
		old.conn.Close()
	}
	s.log.Info("node connected", "node", node, "remote", r.RemoteAddr)
	err = sess.run()
	s.mu.Lock()
	if s.sessions[node] == sess {
		delete(s.sessions, node)
	}
	s.mu.Unlock()
	s.log.Info("node disconnected", "node", node, "error", err)
	s.record("event", node, "disconnect", nil)
}

// Nodes lists the connected nodes.
func (s *Server) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.sessions {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Send writes msg to node with its content in kind.
func (s *Server) Send(node string, msg abi.Message, kind wire.Kind) error {
	if msg.Header.ID == "" {
		msg.Header.ID = bus.NewID()
	}
	if msg.Header.Timestamp == 0 {
		msg.Header.Timestamp = time.Now().UnixMilli()
	}
	frame, err := wire.Encode(msg, kind)
	if err != nil {
		return err
	}
	return s.SendFrame(node, frame)
}

// SendFrame writes a raw frame to node, as is.
func (s *Server) SendFrame(node string, frame []byte) error {
	s.mu.Lock()
	sess := s.sessions[node]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("send to %s: %w", node, ErrNoNode)
	}
	var raw json.RawMessage = frame
	s.record("cloud->edge", node, "", raw)
	return sess.write(websocket.TextMessage, frame)
}

// SendBinary writes a binary frame to node; KubeEdge never sends one, so
// it is for testing the edge's refusal.
func (s *Server) SendBinary(node string, data []byte) error {
	s.mu.Lock()
	sess := s.sessions[node]
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("send to %s: %w", node, ErrNoNode)
	}
	return sess.write(websocket.BinaryMessage, data)
}

// SendReliable sends msg to node and waits for the edge's ACK (a response
// whose parent is msg's id), sending the same message (same msg_id) again
// every ResendInterval until the ACK comes or ctx ends, as CloudCore
// resends; a node that is not connected is waited for.
func (s *Server) SendReliable(ctx context.Context, node string, msg abi.Message, kind wire.Kind) error {
	if msg.Header.ID == "" {
		msg.Header.ID = bus.NewID()
	}
	acked := make(chan struct{})
	s.mu.Lock()
	s.acks[msg.Header.ID] = acked
	s.mu.Unlock()
	s.noteSent(node, msg)
	defer func() {
		s.mu.Lock()
		delete(s.acks, msg.Header.ID)
		s.mu.Unlock()
	}()
	sends := 0
	for {
		if err := s.Send(node, msg, kind); err == nil {
			sends++
		} else if !errors.Is(err, ErrNoNode) {
			return err
		}
		t := time.NewTimer(s.opts.ResendInterval)
		select {
		case <-acked:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("send %s to %s: no ACK after %d sends: %w", msg.Header.ID, node, sends, ctx.Err())
		case <-t.C:
		}
	}
}

// record writes one line of the frame record.
func (s *Server) record(dir, node, kind string, frame any) {
	if s.opts.Record == nil {
		return
	}
	line, err := json.Marshal(struct {
		TS    time.Time `json:"ts"`
		Dir   string    `json:"dir"`
		Node  string    `json:"node"`
		Kind  string    `json:"kind,omitempty"`
		Frame any       `json:"frame,omitempty"`
	}{time.Now().UTC(), dir, node, kind, frame})
	if err != nil {
		return
	}
	s.recMu.Lock()
	s.opts.Record.Write(append(line, '\n'))
	s.recMu.Unlock()
}

// session is one node's connection. Its frames go out through a queue
// and a writer of their own, so the reader never waits for the node to
// read (two readers each waiting on the other's writes would stall).
type session struct {
	srv  *Server
	node string
	conn *websocket.Conn
	out  chan outFrame
	done chan struct{} // closed when run returns
}

type outFrame struct {
	typ  int
	data []byte
}

// write queues a frame for the node, waiting up to 30 s for room.
func (c *session) write(typ int, data []byte) error {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case c.out <- outFrame{typ, data}:
		return nil
	case <-c.done:
		return fmt.Errorf("send to %s: %w", c.node, ErrNoNode)
	case <-t.C:
		return fmt.Errorf("send to %s: queue full for 30s", c.node)
	}
}

// writeLoop writes the queued frames until the session ends.
func (c *session) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case f := <-c.out:
			c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if err := c.conn.WriteMessage(f.typ, f.data); err != nil {
				c.conn.Close()
				return
			}
		}
	}
}

// run reads the node's frames until the connection fails or the node
// misses its keepalive.
func (c *session) run() error {
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(c.done)
	defer c.conn.Close()
	wg.Go(c.writeLoop)
	c.conn.SetReadLimit(maxFrameBytes)
	for {
		// A keepalive, or any frame, within the timeout keeps the session.
		c.conn.SetReadDeadline(time.Now().Add(c.srv.opts.KeepaliveTimeout))
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return err
		}
		if typ != websocket.TextMessage {
			continue
		}
		c.srv.record("edge->cloud", c.node, "", json.RawMessage(data))
		d, err := wire.Decode(data)
		if err != nil {
			c.srv.log.Warn("malformed frame from node", "node", c.node, "error", err)
			continue
		}
		c.handle(Received{Node: c.node, Frame: data, Decoded: d})
	}
}

// handle answers what CloudCore answers: the twin's updates get the
// devicecontroller's confirm; service account token queries get a token;
// responses ACK reliable sends. It also answers the node's package
// queries and keeps its report.
func (c *session) handle(r Received) {
	m := r.Message
	c.srv.note(c.node, m)
	c.srv.deliverReply(r)
	switch {
	case isServicebusUpload(m):
		c.srv.forwards.Go(func() { c.srv.forwardServicebus(c.node, m) })
	case m.Route.Operation == abi.OpQuery && strings.Contains(m.Route.Resource, "/"+pluginsync.PackageType+"/"):
		c.answerChunk(m)
	case isTokenQuery(m):
		c.answerToken(m)
	case m.Route.Operation == abi.OpResponse && m.Header.ParentID != "":
		c.srv.mu.Lock()
		if ch, ok := c.srv.acks[m.Header.ParentID]; ok {
			close(ch)
			delete(c.srv.acks, m.Header.ParentID)
		}
		c.srv.mu.Unlock()
	case m.Route.Source == "twin" && m.Route.Operation == abi.OpUpdate &&
		(strings.HasSuffix(m.Route.Resource, "/twin/edge_updated") || strings.HasSuffix(m.Route.Resource, "/state/update")):
		confirm := abi.Message{Header: abi.Header{ParentID: m.Header.ID},
			Route: abi.Route{Source: "devicecontroller", Group: "twin", Operation: abi.OpResponse, Resource: "twin"}, Content: []byte("OK")}
		if err := c.srv.Send(c.node, confirm, wire.KindString); err != nil {
			c.srv.log.Warn("twin confirm not sent", "node", c.node, "error", err)
		}
	}
	select {
	case c.srv.received <- r:
	default:
		select {
		case <-c.srv.received:
		default:
		}
		select {
		case c.srv.received <- r:
		default:
		}
	}
}
