package cloud

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/edgehost/edgehost/host/pluginsync"
)

// NodeReport is what one node reported upstream since the server started:
// the reference cloud's view of it, for `edgehost hub get`. It is kept in
// memory only.
type NodeReport struct {
	Node      string    `json:"node"`
	Connected bool      `json:"connected"`
	LastSeen  time.Time `json:"lastSeen,omitzero"`
	Messages  uint64    `json:"messages"`
	// Twins are the last twin document each device reported
	// (edge_updated), by device id ({namespace}/{name}).
	Twins map[string]json.RawMessage `json:"twins"`
	// Objects are the objects sent with `hub apply` and what became of
	// them, by resource.
	Objects map[string]ObjectReport `json:"objects"`
	// Plugins are the last status each plugin reported, by name.
	Plugins map[string]pluginsync.Status `json:"plugins"`
}

// ObjectReport is one object sent to a node reliably.
type ObjectReport struct {
	Operation       string    `json:"operation"`
	ResourceVersion string    `json:"resourceVersion,omitempty"`
	MsgID           string    `json:"msgID"`
	Sent            time.Time `json:"sent"`
	Acked           time.Time `json:"acked,omitzero"`
}

// report returns node's report, creating it; under s.mu.
func (s *Server) report(node string) *NodeReport {
	r := s.reports[node]
	if r == nil {
		r = &NodeReport{Node: node, Twins: map[string]json.RawMessage{}, Objects: map[string]ObjectReport{},
			Plugins: map[string]pluginsync.Status{}}
		s.reports[node] = r
	}
	return r
}

// Reports returns a copy of every node's report, by node name.
func (s *Server) Reports() []NodeReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeReport, 0, len(s.reports))
	for n, r := range s.reports {
		c := *r
		c.Connected = s.sessions[n] != nil
		c.Twins, c.Objects, c.Plugins = copyMap(r.Twins), copyMap(r.Objects), copyMap(r.Plugins)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out
}

func copyMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// note records what a node's message says about it.
func (s *Server) note(node string, m abi.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.report(node)
	r.LastSeen = time.Now().UTC()
	r.Messages++
	switch {
	case m.Route.Operation == abi.OpResponse && m.Header.ParentID != "":
		for key, o := range r.Objects {
			if o.MsgID == m.Header.ParentID && o.Acked.IsZero() {
				o.Acked = r.LastSeen
				r.Objects[key] = o
			}
		}
	case strings.HasSuffix(m.Route.Resource, "/twin/edge_updated"):
		// device/{namespace}/{name}/twin/edge_updated
		id := strings.TrimSuffix(strings.TrimPrefix(m.Route.Resource, "device/"), "/twin/edge_updated")
		r.Twins[id] = twinOf(m.Content)
	case strings.Contains(m.Route.Resource, "/"+pluginsync.StatusType+"/"):
		var st pluginsync.Status
		if err := json.Unmarshal(m.Content, &st); err == nil && st.Name != "" {
			r.Plugins[st.Name] = st
		}
	}
}

// twinOf is the "twin" member of an edge_updated document, or the whole
// content when it has none.
func twinOf(content []byte) json.RawMessage {
	var doc struct {
		Twin json.RawMessage `json:"twin"`
	}
	if json.Unmarshal(content, &doc) == nil && doc.Twin != nil {
		return doc.Twin
	}
	return append(json.RawMessage(nil), content...)
}

// noteSent records an object sent to node with SendReliable.
func (s *Server) noteSent(node string, m abi.Message) {
	if m.Route.Group != "resource" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.report(node).Objects[m.Route.Resource] = ObjectReport{Operation: m.Route.Operation,
		ResourceVersion: m.Header.ResourceVersion, MsgID: m.Header.ID, Sent: time.Now().UTC()}
}

// packageDir is where the packages `hub plugin push` adds are kept, by
// digest.
func (s *Server) packageDir() string { return filepath.Join(s.opts.Dir, "packages") }

// AddPackage keeps a plugin package for the nodes to fetch and returns its
// digest (hex sha256), the name objects refer to it by.
func (s *Server) AddPackage(file []byte) (string, error) {
	sum := sha256.Sum256(file)
	digest := hex.EncodeToString(sum[:])
	if err := os.MkdirAll(s.packageDir(), 0o700); err != nil {
		return "", fmt.Errorf("add package: %w", err)
	}
	tmp, err := os.CreateTemp(s.packageDir(), ".add-*")
	if err != nil {
		return "", fmt.Errorf("add package: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(file); err != nil {
		tmp.Close()
		return "", fmt.Errorf("add package: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("add package: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.packageDir(), digest)); err != nil {
		return "", fmt.Errorf("add package: %w", err)
	}
	return digest, nil
}

// answerChunk answers a node's query for part of a package.
func (c *session) answerChunk(m abi.Message) {
	reply := func(op string, content any, kind wire.Kind) {
		r := m.Reply(op, nil)
		r.Route.Source = "cloudhub"
		switch v := content.(type) {
		case string:
			r.Content = []byte(v)
		default:
			r.Content, _ = json.Marshal(v) // a Chunk always marshals
		}
		if err := c.srv.Send(c.node, r, kind); err != nil {
			c.srv.log.Warn("package chunk not sent", "node", c.node, "error", err)
		}
	}
	var q pluginsync.ChunkQuery
	if err := json.Unmarshal(m.Content, &q); err != nil {
		reply(abi.OpError, "chunk query: "+err.Error(), wire.KindString)
		return
	}
	data, size, err := c.srv.readChunk(q)
	if err != nil {
		reply(abi.OpError, err.Error(), wire.KindString)
		return
	}
	reply(abi.OpResponse, pluginsync.Chunk{Digest: q.Digest, Offset: q.Offset, Size: size, Data: data}, wire.KindObject)
}

// readChunk reads the part of a package q asks for.
func (s *Server) readChunk(q pluginsync.ChunkQuery) ([]byte, int64, error) {
	if len(q.Digest) != 64 || strings.Trim(q.Digest, "0123456789abcdef") != "" {
		return nil, 0, fmt.Errorf("package %.80q: not a hex sha256", q.Digest)
	}
	if q.Length <= 0 || q.Length > pluginsync.ChunkBytes || q.Offset < 0 {
		return nil, 0, fmt.Errorf("package %s: offset %d length %d: want a length of 1 to %d", q.Digest, q.Offset, q.Length, pluginsync.ChunkBytes)
	}
	f, err := os.Open(filepath.Join(s.packageDir(), q.Digest))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, fmt.Errorf("package %s: not on this hub; push it with `edgehost hub plugin push`", q.Digest)
	} else if err != nil {
		return nil, 0, fmt.Errorf("package %s: %w", q.Digest, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("package %s: %w", q.Digest, err)
	}
	if q.Offset+int64(q.Length) > st.Size() {
		return nil, 0, fmt.Errorf("package %s is %d bytes: offset %d length %d is past its end", q.Digest, st.Size(), q.Offset, q.Length)
	}
	data := make([]byte, q.Length)
	if _, err := f.ReadAt(data, q.Offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("package %s: %w", q.Digest, err)
	}
	return data, st.Size(), nil
}
