package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// Client talks to a daemon's admin API.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for addr: a unix socket path, or an
// http(s):// URL for the TCP listener (which needs token).
func NewClient(addr, token string) *Client {
	c := &Client{base: strings.TrimRight(addr, "/"), token: token, http: &http.Client{}}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		c.base = "http://edgehost"
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
	return resp, err
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
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
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
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("admin api %s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("admin api %s %s: %s", method, path, resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin api %s %s: decode reply: %w", method, path, err)
	}
	return nil
}
