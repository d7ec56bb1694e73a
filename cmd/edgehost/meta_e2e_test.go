package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The real daemon stores a cloud object that reaches the metamanager,
// answers a local query for it from the store, shows it with `edgehost
// meta get|list`, and still has it after a restart.
func TestMetaEndToEnd(t *testing.T) {
	bin := buildBinary(t)
	dataDir := shortDataDir(t)
	cfg := writeConfig(t, dataDir, "modules:\n  eventbus: {enable: false}\n  plugins: {enable: false}\n  twin: {enable: false}\n")
	d := startDaemon(t, bin, cfg, dataDir)

	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"nginx","namespace":"default","resourceVersion":"1","uid":"53c72dfc"}}`
	if out, code := edgehost(t, bin, "", "send", "--data-dir", dataDir, "--to", "metamanager", "--source", "edgecontroller",
		"--group", "resource", "--operation", "insert", "--resource", "default/pod/nginx", "--content", pod, "--no-wait"); code != 0 {
		t.Fatalf("send insert: exit %d: %s", code, out)
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, code := edgehost(t, bin, "", "meta", "get", "--data-dir", dataDir, "-o", "json", "default/pod/nginx")
		if code == 0 {
			got = out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("meta get never found the pod (exit %d): %s\nlogs:\n%s", code, out, d.logs)
		}
	}
	var o struct {
		Key             string          `json:"key"`
		ResourceVersion string          `json:"resource_version"`
		Content         json.RawMessage `json:"content"`
	}
	var content bytes.Buffer
	err := json.Unmarshal([]byte(got), &o)
	if err == nil {
		err = json.Compact(&content, o.Content)
	}
	if err != nil || o.Key != "default/pod/nginx" || o.ResourceVersion != "1" || content.String() != pod {
		t.Errorf("meta get = %s (%v)", got, err)
	}

	out, code := edgehost(t, bin, "", "send", "--data-dir", dataDir, "--to", "metamanager", "--source", "edged",
		"--group", "meta", "--operation", "query", "--resource", "default/pod/nginx")
	var reply struct {
		Header struct {
			ParentID string `json:"parent_msg_id"`
		} `json:"header"`
		Route   struct{ Source, Operation string } `json:"route"`
		Content []string                           `json:"content"`
	}
	if err := json.Unmarshal([]byte(out), &reply); code != 0 || err != nil || reply.Route.Source != "metamanager" ||
		reply.Route.Operation != "response" || len(reply.Content) != 1 || reply.Content[0] != pod {
		t.Errorf("query: exit %d, %v: %s", code, err, out)
	}

	if out, code := edgehost(t, bin, "", "meta", "get", "--data-dir", dataDir, "default/pod/missing"); code == 0 || !strings.Contains(out, "404") {
		t.Errorf("meta get of a missing object: exit %d: %s", code, out)
	}
	if out, code := edgehost(t, bin, "", "meta", "get", "--data-dir", dataDir, "default/pod"); code == 0 || !strings.Contains(out, "422") {
		t.Errorf("meta get of a bad key: exit %d: %s", code, out)
	}
	if _, body := adminGet(t, dataDir, "/metrics"); !strings.Contains(body, "\nedgehost_meta_objects_stored_total 1\n") {
		t.Errorf("/metrics lacks the stored object:\n%s", body)
	}

	d.stop(t)
	d = startDaemon(t, bin, cfg, dataDir)
	out, code = edgehost(t, bin, "", "meta", "list", "--data-dir", dataDir, "--type", "pod")
	if code != 0 || !strings.Contains(out, "default/pod/nginx") {
		t.Errorf("meta list after a restart: exit %d:\n%s", code, out)
	}
	d.stop(t)
}
