package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/edgehost/edgehost/host/servicebus"
	"github.com/spf13/cobra"
)

func newHubHTTPCommand() *cobra.Command {
	var dir, node, method, data, output string
	var port int
	var headers []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "http [METHOD] PATH --node NODE --port PORT",
		Short: "Call a node's local HTTP service through its servicebus, as CloudCore's router does, and print the answer",
		Long: "Sends KubeEdge's servicebus request for {port}:{path} to the node through a running `edgehost hub serve`\n" +
			"and prints the status line, the headers and the body of the node's answer (docs/servicebus.md).",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				method, args = args[0], args[1:]
			}
			if port < 1 || port > 65535 {
				return fmt.Errorf("--port: must be 1..65535, got %d", port)
			}
			req := servicebus.HTTPRequest{Header: http.Header{}, Method: strings.ToUpper(method), URL: args[0]}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return fmt.Errorf("--header %q: want NAME:VALUE", h)
				}
				req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			body, err := readData(cmd.InOrStdin(), data)
			if err != nil {
				return err
			}
			if len(body) > servicebus.DefaultMaxBodyBytes {
				return fmt.Errorf("--data: %d bytes is over the servicebus body cap of %d bytes (KubeEdge's 5 MB)", len(body), servicebus.DefaultMaxBodyBytes)
			}
			req.Body = body
			content, err := json.Marshal(req)
			if err != nil {
				return err
			}
			msg := abi.Message{Header: abi.Header{ID: bus.NewID(), Timestamp: time.Now().UnixMilli()},
				Route:   abi.Route{Source: servicebus.CloudSource, Group: servicebus.UserGroup, Operation: req.Method, Resource: strconv.Itoa(port) + ":" + args[0]},
				Content: content}
			resp, err := hubRequest(dir, node, msg, timeout)
			if err != nil {
				return fmt.Errorf("hub http: %w", err)
			}
			return printHTTPResponse(cmd, resp, output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	f.StringVar(&node, "node", "", "the node")
	f.IntVar(&port, "port", 0, "the local service's port on the node")
	f.StringVarP(&method, "method", "X", "GET", "the HTTP method")
	f.StringArrayVarP(&headers, "header", "H", nil, "a request header NAME:VALUE (repeatable)")
	f.StringVarP(&data, "data", "d", "", `the request body: text, @FILE, or @- for stdin`)
	f.StringVarP(&output, "output", "o", "", "write the body to FILE instead of stdout")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up when the node has not answered after this long")
	cmd.MarkFlagRequired("node")
	cmd.MarkFlagRequired("port")
	return cmd
}

// readData reads a --data value: text, @FILE or @-.
func readData(stdin io.Reader, data string) ([]byte, error) {
	name, ok := strings.CutPrefix(data, "@")
	if !ok {
		return []byte(data), nil
	}
	if name == "-" {
		return io.ReadAll(stdin)
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("--data: %w", err)
	}
	return b, nil
}

// hubRequest has a running `hub serve` send msg to node and returns the
// node's HTTPResponse.
func hubRequest(dir, node string, msg abi.Message, timeout time.Duration) (servicebus.HTTPResponse, error) {
	frame, err := wire.Encode(msg, wire.KindObject)
	if err != nil {
		return servicebus.HTTPResponse{}, err
	}
	c := hubClient(dir)
	c.Timeout = timeout + 5*time.Second
	resp, err := c.Post("http://hub/nodes/"+node+"/requests?timeout="+timeout.String(), "application/json", bytes.NewReader(frame))
	if err != nil {
		return servicebus.HTTPResponse{}, fmt.Errorf("is `edgehost hub serve` running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return servicebus.HTTPResponse{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return servicebus.HTTPResponse{}, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	d, err := wire.Decode(body)
	if err != nil {
		return servicebus.HTTPResponse{}, fmt.Errorf("the node's reply: %w", err)
	}
	var out servicebus.HTTPResponse
	if err := json.Unmarshal(d.Message.Content, &out); err != nil {
		return servicebus.HTTPResponse{}, fmt.Errorf("the node's reply is not an HTTPResponse: %w: %.200s", err, d.Message.Content)
	}
	return out, nil
}

// printHTTPResponse prints the status line and sorted headers, a blank
// line, and the body (or writes the body to output).
func printHTTPResponse(cmd *cobra.Command, resp servicebus.HTTPResponse, output string) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "HTTP %d %s\n", resp.StatusCode, http.StatusText(resp.StatusCode))
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w)
	if output != "" {
		return os.WriteFile(output, resp.Body, 0o644)
	}
	_, err := w.Write(resp.Body)
	return err
}

func newHubTargetCommand() *cobra.Command {
	var dir, node string
	cmd := &cobra.Command{
		Use:   "target start|stop URL --node NODE",
		Short: "Allow (start) or disallow (stop) a target URL for a node's apps' edge → cloud requests, as CloudCore's rule endpoint does",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			op := args[0]
			if op != servicebus.OpStart && op != servicebus.OpStop {
				return fmt.Errorf("hub target: want start or stop, got %q", op)
			}
			msg := abi.Message{Header: abi.Header{ID: bus.NewID(), Timestamp: time.Now().UnixMilli()},
				Route: abi.Route{Source: servicebus.CloudSource, Group: servicebus.UserGroup, Operation: op, Resource: args[1]}}
			frame, err := wire.Encode(msg, wire.KindNull)
			if err != nil {
				return err
			}
			resp, err := hubClient(dir).Post("http://hub/nodes/"+node+"/messages", "application/json", bytes.NewReader(frame))
			if err != nil {
				return fmt.Errorf("hub target: is `edgehost hub serve` running? %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				return fmt.Errorf("hub target: %s: %s", resp.Status, strings.TrimSpace(string(b)))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s sent to %s\n", op, args[1], node)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	cmd.Flags().StringVar(&node, "node", "", "the node")
	cmd.MarkFlagRequired("node")
	return cmd
}
