package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StoreBackend is the store the API backs up under GET /v1/store/backup. A
// Backend that also implements it gets that endpoint.
type StoreBackend interface {
	// BackupStore writes a consistent copy of the whole store file to w
	// while the daemon serves, and returns the bytes written.
	BackupStore(w io.Writer) (int64, error)
}

func (s *Server) registerStore(sb StoreBackend) {
	s.mux.HandleFunc("GET /v1/store/backup", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		// A failure after the first byte cannot change the status: the
		// client checks the copy as a store before it keeps it.
		if n, err := sb.BackupStore(w); err != nil {
			s.log.Error("store backup failed", "bytes_sent", n, "error", err)
			if n == 0 {
				writeError(w, http.StatusInternalServerError, err)
			}
		}
	})
}

// BackupStore streams the daemon's store (GET /v1/store/backup) into w.
func (c *Client) BackupStore(ctx context.Context, w io.Writer) (int64, error) {
	const path = "/v1/store/backup"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("admin api GET %s: %w", path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin api GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return 0, fmt.Errorf("admin api GET %s: %s: %s", path, resp.Status, e.Error)
		}
		return 0, fmt.Errorf("admin api GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(data)))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("admin api GET %s: after %d bytes: %w", path, n, err)
	}
	return n, nil
}
