package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/api"
	"github.com/spf13/cobra"
)

// Exit statuses of `edgehost send` beyond those of every command
// (exitcodes.go).
const (
	// exitHostFailure: the host failed the message (a fault, a failure
	// code, quarantine, too large, no receiver).
	exitHostFailure = exitRemote
	// exitErrorReply: the receiver answered with operation error, its own
	// application error.
	exitErrorReply = 4
)

func newSendCommand() *cobra.Command {
	var (
		flags     clientFlags
		req       api.InjectRequest
		content   string
		noWait    bool
		timeout   time.Duration
		operation string
	)
	cmd := &cobra.Command{
		Use:   "send --to MODULE [--operation OP] [--resource RES] [--content TEXT|-]",
		Short: "Put a message on the daemon's bus and print the reply (a debugging aid)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.To == "" {
				return usageErrorf("--to is required")
			}
			if content == "-" {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read content from stdin: %w", err)
				}
				content = string(b)
			}
			if content != "" {
				b, err := json.Marshal(content)
				if err != nil {
					return err
				}
				req.Message.Content = b
			}
			req.Message.Route.Operation = operation
			req.Wait = !noWait
			req.Timeout = timeout.String()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout+5*time.Second)
			defer cancel()
			resp, err := flags.client().Inject(ctx, req)
			var failed *api.FailureError
			if errors.As(err, &failed) {
				printJSON(cmd.OutOrStdout(), resp.Reply)
				return &exitError{code: exitHostFailure, err: err}
			}
			if err != nil {
				return err
			}
			if resp.Reply == nil {
				fmt.Fprintln(os.Stderr, "sent", resp.ID)
				return nil
			}
			if err := printJSON(cmd.OutOrStdout(), resp.Reply); err != nil {
				return err
			}
			if resp.Reply.Route.Operation == abi.OpError {
				return &exitError{code: exitErrorReply, err: fmt.Errorf("%s answered with operation error", req.To)}
			}
			return nil
		},
	}
	flags.register(cmd)
	f := cmd.Flags()
	f.StringVar(&req.To, "to", "", "the receiving module or plugin (with --broadcast: a group)")
	f.BoolVar(&req.Broadcast, "broadcast", false, "send to every module of the group named by --to (implies --no-wait)")
	f.StringVar(&operation, "operation", "query", "route operation")
	f.StringVar(&req.Message.Route.Resource, "resource", "", "route resource")
	f.StringVar(&req.Message.Route.Group, "group", "", "route group")
	f.StringVar(&req.Message.Route.Source, "source", "cli", "route source")
	f.StringVar(&content, "content", "", `message content ("-" reads stdin)`)
	f.BoolVar(&noWait, "no-wait", false, "do not wait for a reply")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the reply")
	return cmd
}
