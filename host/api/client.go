package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/edgehost/edgehost/abi"
)

// Client talks to a daemon's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
	// socket is the unix socket's path; empty for a URL.
	socket string
}

// NewClient returns a client for addr: a unix socket path, or an
// http(s):// URL for the TCP listener (which needs token).
func NewClient(addr, token string) *Client {
	c := &Client{base: strings.TrimRight(addr, "/"), token: token, http: &http.Client{}}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		c.base = "http://edgehost"
		c.socket = addr
		c.http.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		}}
	}
	return c
}

// Status fetches /v1/status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

// Inject posts a message to /v1/messages.
func (c *Client) Inject(ctx context.Context, req InjectRequest) (InjectResponse, error) {
	var resp InjectResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, fmt.Errorf("encode message request: %w", err)
	}
	err = c.do(ctx, http.MethodPost, "/v1/messages", body, &resp)
	var failed *statusError
	if errors.As(err, &failed) && json.Unmarshal(failed.body, &resp) == nil && resp.Failure != nil {
		return resp, &FailureError{Status: failed.status, Failure: *resp.Failure}
	}
	return resp, err
}

// FailureError is Inject's error when the host failed the message (the
// plugin faulted, is quarantined, returned a code...): the response,
// with its failure reply, came with an HTTP status other than 200.
type FailureError struct {
	// Status is the HTTP status.
	Status int
	// Failure is the host's failure.
	Failure abi.Failure
}

// Error says what failed.
func (e *FailureError) Error() string {
	return fmt.Sprintf("the host failed the message (%d %s): %s", e.Status, http.StatusText(e.Status), e.Failure)
}

// statusError is a reply with a status other than 200, kept with its body.
type statusError struct {
	msg    string
	status int
	body   []byte
}

func (e *statusError) Error() string { return e.msg }

// IsRemote says whether err is the admin API's answer with an error status
// (the daemon was reached and refused or failed the request), as opposed to
// a failure to ask.
func IsRemote(err error) bool {
	var se *statusError
	var fe *FailureError
	return errors.As(err, &se) || errors.As(err, &fe)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	contentType := ""
	if body != nil {
		contentType = "application/json"
	}
	return c.doRaw(ctx, method, path, body, contentType, out)
}

// doRaw sends body with contentType (none when empty) and decodes the JSON
// reply into out.
func (c *Client) doRaw(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	return c.doStream(ctx, method, path, bytes.NewReader(body), contentType, out)
}

// doStream sends the body read from body with contentType (none when
// empty) and decodes the JSON reply into out.
func (c *Client) doStream(ctx context.Context, method, path string, body io.Reader, contentType string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("admin api %s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if c.socket != "" && errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("admin api %s %s: %w; is the daemon running? (socket %s)", method, path, op, c.socket)
		}
		return fmt.Errorf("admin api %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("admin api %s %s: read reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		msg := fmt.Sprintf("admin api %s %s: %s", method, path, resp.Status)
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg += ": " + e.Error
		}
		return &statusError{msg: msg, status: resp.StatusCode, body: data}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin api %s %s: decode reply: %w", method, path, err)
	}
	return nil
}
