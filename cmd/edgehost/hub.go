package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/certs"
	"github.com/edgehost/edgehost/host/hub/cloud"
	"github.com/edgehost/edgehost/host/hub/wire"
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// hubSocket is the reference cloud's local admin socket in its data dir.
const hubSocket = "hub.sock"

func newHubCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "hub", Short: "Run or drive the reference cloud side of the link (docs/hub.md)"}
	cmd.AddCommand(newHubServeCommand(), newHubTokenCommand(), newHubApplyCommand(), newHubNodesCommand(),
		newHubPluginCommand(), newHubGetCommand(), newHubHTTPCommand(), newHubTargetCommand())
	return cmd
}

// hubDir returns the reference cloud's data dir from --data-dir,
// $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub.
func hubDir(flag string) string {
	for _, d := range []string{flag, os.Getenv("EDGEHOST_HUB_DIR")} {
		if d != "" {
			return d
		}
	}
	return "/var/lib/edgehost-hub"
}

func newHubServeCommand() *cobra.Command {
	var dir, listen, https, record, logLevel string
	var hosts []string
	var keepalive time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the cloud link (mTLS websocket, :10000) and the certificate service (:10002) until SIGINT or SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir = hubDir(dir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("hub data dir: %w", err)
			}
			log := hclog.New(&hclog.LoggerOptions{Name: "edgehost-hub", Level: hclog.LevelFromString(logLevel), Output: os.Stderr})
			opts := cloud.Options{Dir: dir, Hosts: hosts, KeepaliveTimeout: keepalive, Logger: log}
			if record != "" {
				f, err := os.OpenFile(record, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return fmt.Errorf("--record: %w", err)
				}
				defer f.Close()
				opts.Record = f
			}
			srv, err := cloud.New(opts)
			if err != nil {
				return err
			}
			ws, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			cs, err := net.Listen("tcp", https)
			if err != nil {
				ws.Close()
				return fmt.Errorf("--https: %w", err)
			}
			sock := filepath.Join(dir, hubSocket)
			os.Remove(sock)
			admin, err := net.Listen("unix", sock)
			if err != nil {
				ws.Close()
				cs.Close()
				return fmt.Errorf("admin socket: %w", err)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			adminSrv := &http.Server{Handler: srv.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				adminSrv.Close()
			}()
			go adminSrv.Serve(admin)
			errc := make(chan error, 2)
			go func() { errc <- srv.ServeWebsocket(ctx, ws) }()
			go func() { errc <- srv.ServeCertificates(ctx, cs) }()
			log.Info("hub serving", "websocket", ws.Addr().String(), "https", cs.Addr().String(), "data_dir", dir, "hosts", hosts)
			err = <-errc
			stop()
			if err2 := <-errc; err == nil {
				err = err2
			}
			return err
		},
	}
	host, _ := os.Hostname()
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", "", "the hub's data dir, holding its CA (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	f.StringVar(&listen, "listen", ":10000", "websocket (cloudhub) listen address")
	f.StringVar(&https, "https", ":10002", "certificate service listen address")
	f.StringSliceVar(&hosts, "host", []string{"127.0.0.1", "localhost", host}, "names and IPs the server certificate is valid for (repeatable)")
	f.StringVar(&record, "record", "", "append every frame to FILE as JSON lines, in the form of the edgecore capture")
	f.DurationVar(&keepalive, "keepalive-timeout", cloud.DefaultKeepaliveTimeout, "end a node's session after this long without a frame")
	f.StringVar(&logLevel, "log-level", "info", "log level")
	return cmd
}

func newHubTokenCommand() *cobra.Command {
	var dir string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a bootstrap token for modules.hub.token (creates the hub's CA if there is none)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir = hubDir(dir)
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return fmt.Errorf("hub data dir: %w", err)
			}
			ca, err := certs.LoadOrCreateCA(dir)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ca.Token(ttl))
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	cmd.Flags().DurationVar(&ttl, "ttl", 12*time.Hour, "how long the token is valid (CloudCore's tokenRefreshDuration is 12h)")
	return cmd
}

// hubClient talks to a running `hub serve` over its socket.
func hubClient(dir string) *http.Client {
	sock := filepath.Join(hubDir(dir), hubSocket)
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func newHubApplyCommand() *cobra.Command {
	var dir, file, node, op string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "apply -f FILE --node NODE",
		Short: "Send a Kubernetes object (YAML or JSON) to a node as CloudCore would, resending until the node ACKs it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readInput(cmd.InOrStdin(), file)
			if err != nil {
				return err
			}
			var obj any
			if err := yaml.Unmarshal(data, &obj); err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			content, err := json.Marshal(obj)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			msg, err := cloud.ObjectMessage(content, op)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			if err := sendReliable(ctx, dir, node, msg); err != nil {
				return fmt.Errorf("hub apply: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s acknowledged by %s\n", msg.Route.Operation, msg.Route.Resource, node)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	f.StringVarP(&file, "file", "f", "", `the object ("-" reads stdin)`)
	f.StringVar(&node, "node", "", "the node to send it to")
	f.StringVar(&op, "op", "update", "operation: insert, update or delete")
	f.DurationVar(&timeout, "timeout", time.Minute, "give up when the node has not ACKed after this long")
	cmd.MarkFlagRequired("file")
	cmd.MarkFlagRequired("node")
	return cmd
}

func newHubNodesCommand() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "nodes",
		Short: "List the nodes connected to a running `edgehost hub serve`",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			resp, err := hubClient(dir).Get("http://hub/nodes")
			if err != nil {
				return fmt.Errorf("hub nodes: is `edgehost hub serve` running? %w", err)
			}
			defer resp.Body.Close()
			var nodes []string
			if err := json.NewDecoder(resp.Body).Decode(&nodes); err != nil {
				return fmt.Errorf("hub nodes: %w", err)
			}
			for _, n := range nodes {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "data-dir", "", "the hub's data dir (default $EDGEHOST_HUB_DIR, else /var/lib/edgehost-hub)")
	return cmd
}

// sendReliable has a running `hub serve` send msg to node, resending
// until the node ACKs it or ctx ends.
func sendReliable(ctx context.Context, dir, node string, msg abi.Message) error {
	msg.Header.ID = bus.NewID()
	msg.Header.Timestamp = time.Now().UnixMilli()
	frame, err := wire.Encode(msg, wire.KindObject)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://hub/nodes/"+node+"/messages?ack=1", bytes.NewReader(frame))
	resp, err := hubClient(dir).Do(req)
	if err != nil {
		return fmt.Errorf("is `edgehost hub serve` running? %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func readInput(stdin io.Reader, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}
