package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/edgehost/edgehost/host/pluginsync"
)

// AdminHandler serves `edgehost hub apply` and `hub get` on the server's
// local socket:
//
//	GET  /nodes                   the connected nodes, a JSON array
//	POST /nodes/{node}/messages   body: one beehive message (JSON); with
//	                              ?ack=1 it is resent until the node ACKs
//	                              it, else written once
//	POST /nodes/{node}/requests   body: one beehive message; waits (up to
//	                              ?timeout=, default 30s) for the node's
//	                              reply and answers with its frame
//	GET  /reports                 what each node reported: []NodeReport
//	POST /packages                body: a plugin package; kept for nodes
//	                              to fetch: {"digest", "size"}
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /reports", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Reports())
	})
	mux.HandleFunc("POST /packages", func(w http.ResponseWriter, r *http.Request) {
		file, err := io.ReadAll(io.LimitReader(r.Body, pluginsync.MaxPackageBytes+1))
		if err != nil || len(file) > pluginsync.MaxPackageBytes {
			http.Error(w, fmt.Sprintf("read package: over %d bytes or unreadable (%v)", pluginsync.MaxPackageBytes, err), http.StatusRequestEntityTooLarge)
			return
		}
		digest, err := s.AddPackage(file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"digest": digest, "size": len(file)})
	})
	mux.HandleFunc("GET /nodes", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(append([]string{}, s.Nodes()...))
	})
	mux.HandleFunc("POST /nodes/{node}/requests", s.handleRequest)
	mux.HandleFunc("POST /nodes/{node}/messages", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxFrameBytes+1))
		if err != nil || len(body) > maxFrameBytes {
			http.Error(w, fmt.Sprintf("read message: too large or unreadable (%v)", err), http.StatusBadRequest)
			return
		}
		d, err := wire.Decode(body)
		if err != nil {
			http.Error(w, "message: "+err.Error(), http.StatusBadRequest)
			return
		}
		node := r.PathValue("node")
		if r.URL.Query().Get("ack") == "1" {
			err = s.SendReliable(r.Context(), node, d.Message, d.Kind)
		} else {
			err = s.Send(node, d.Message, d.Kind)
		}
		switch {
		case errors.Is(err, ErrNoNode):
			http.Error(w, err.Error(), http.StatusNotFound)
		case err != nil:
			http.Error(w, err.Error(), http.StatusGatewayTimeout)
		default:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"msg_id": d.Message.Header.ID})
		}
	})
	return mux
}

// ObjectMessage makes the message CloudCore's controllers send for a
// Kubernetes object: source edgecontroller (devicecontroller for devices
// and device models), group resource, resource {ns}/{kind}/{name} ("null"
// namespace for cluster-scoped kinds), with the object's
// resourceVersion. op is insert, update or delete.
func ObjectMessage(object []byte, op string) (abi.Message, error) {
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name            string `json:"name"`
			Namespace       string `json:"namespace"`
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(object, &meta); err != nil {
		return abi.Message{}, fmt.Errorf("object: %w", err)
	}
	if meta.Kind == "" || meta.Metadata.Name == "" {
		return abi.Message{}, errors.New("object: kind and metadata.name are required")
	}
	kind := strings.ToLower(meta.Kind)
	ns := meta.Metadata.Namespace
	switch {
	case kind == "node" || kind == "persistentvolume":
		ns = "null"
	case ns == "":
		ns = "default"
	}
	source := "edgecontroller"
	if kind == "device" || kind == "devicemodel" {
		source = "devicecontroller"
	}
	rv := meta.Metadata.ResourceVersion
	if rv == "" {
		rv = "1"
	}
	return abi.Message{Header: abi.Header{ResourceVersion: rv},
		Route:   abi.Route{Source: source, Group: "resource", Operation: op, Resource: ns + "/" + kind + "/" + meta.Metadata.Name},
		Content: object}, nil
}

// handleRequest sends the posted message and answers with the node's
// reply frame.
func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxFrameBytes+1))
	if err != nil || len(body) > maxFrameBytes {
		http.Error(w, fmt.Sprintf("read message: over %d bytes or unreadable (%v)", maxFrameBytes, err), http.StatusRequestEntityTooLarge)
		return
	}
	d, err := wire.Decode(body)
	if err != nil {
		http.Error(w, "message: "+err.Error(), http.StatusBadRequest)
		return
	}
	timeout := 30 * time.Second
	if t := r.URL.Query().Get("timeout"); t != "" {
		if timeout, err = time.ParseDuration(t); err != nil || timeout <= 0 {
			http.Error(w, fmt.Sprintf("timeout %q: want a positive duration", t), http.StatusBadRequest)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	reply, err := s.Request(ctx, r.PathValue("node"), d.Message, d.Kind)
	switch {
	case errors.Is(err, ErrNoNode):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply.Frame)
	}
}
