package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/internal/containerd"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestProbeCounterThresholds(t *testing.T) {
	c := newProbeCounter(&v1.Probe{FailureThreshold: 3, SuccessThreshold: 2})
	steps := []struct {
		ok      bool
		want    probeResult
		changed bool
	}{
		{false, resultUnknown, false}, {false, resultUnknown, false}, {false, resultFailure, true}, // three failures flip it
		{true, resultFailure, false}, {false, resultFailure, false}, // a single success does not; the run restarts
		{true, resultFailure, false}, {true, resultSuccess, true}, // two in a row do
		{true, resultSuccess, false}, {false, resultSuccess, false}, {false, resultSuccess, false}, {false, resultFailure, true},
	}
	for i, s := range steps {
		got, changed := c.observe(s.ok)
		if got != s.want || changed != s.changed {
			t.Fatalf("try %d (ok=%v): %v changed=%v, want %v changed=%v", i, s.ok, got, changed, s.want, s.changed)
		}
	}
	// The API server's defaults when unset: 3 failures, 1 success.
	d := newProbeCounter(&v1.Probe{})
	if r, _ := d.observe(true); r != resultSuccess {
		t.Errorf("default success threshold: %v after one success", r)
	}
	d.observe(false)
	d.observe(false)
	if r, _ := d.observe(false); r != resultFailure {
		t.Errorf("default failure threshold: %v after three failures", r)
	}
}

func TestProbeVerdicts(t *testing.T) {
	var none probeVerdicts
	if !none.started() || !none.ready() {
		t.Error("a container without probes is not started and ready")
	}
	v := probeVerdicts{readiness: {result: resultFailure}, startup: {result: resultUnknown}}
	if v.started() || v.ready() {
		t.Error("started or ready before the startup probe succeeded")
	}
	v[startup] = verdict{result: resultSuccess}
	if !v.started() || v.ready() {
		t.Error("the startup probe succeeded: started, not ready yet")
	}
	v[readiness] = verdict{result: resultSuccess}
	v[liveness] = verdict{result: resultFailure, message: "dead"}
	if k, vd, bad := v.failed(); !bad || k != liveness || vd.message != "dead" {
		t.Errorf("failed liveness: %v %v %v", k, vd, bad)
	}
}

func TestHTTPAndTCPProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("User-Agent") != probeUserAgent || r.Header.Get("X-Probe") != "yes" || r.Host != "site.example":
			w.WriteHeader(http.StatusBadRequest)
		case r.URL.Path == "/healthz":
		case r.URL.Path == "/moved":
			http.Redirect(w, r, "http://198.51.100.1/", http.StatusFound) // not followed, 302 passes
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	host, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	spec := &v1.Container{Ports: []v1.ContainerPort{{Name: "http", ContainerPort: int32(port)}}}
	target := probeTarget{host: host, spec: spec}
	headers := []v1.HTTPHeader{{Name: "X-Probe", Value: "yes"}, {Name: "Host", Value: "site.example"}}
	for _, c := range []struct {
		path string
		port intstr.IntOrString
		ok   bool
		msg  string
	}{
		{"/healthz", intstr.FromString("http"), true, ""},
		{"moved", intstr.FromInt32(int32(port)), true, ""},
		{"/broken", intstr.FromInt32(int32(port)), false, "statuscode: 503"},
		{"/healthz", intstr.FromString("nope"), false, `probe port "nope"`},
	} {
		probe := &v1.Probe{ProbeHandler: v1.ProbeHandler{HTTPGet: &v1.HTTPGetAction{Path: c.path, Port: c.port, HTTPHeaders: headers}}}
		ok, msg := runProbe(context.Background(), probe, target, time.Second)
		if ok != c.ok || !strings.Contains(msg, c.msg) {
			t.Errorf("GET %s port %s: %v %q, want %v %q", c.path, c.port.String(), ok, msg, c.ok, c.msg)
		}
	}
	tcp := &v1.Probe{ProbeHandler: v1.ProbeHandler{TCPSocket: &v1.TCPSocketAction{Port: intstr.FromString("http")}}}
	if ok, msg := runProbe(context.Background(), tcp, target, time.Second); !ok {
		t.Errorf("TCP probe of a listening port: %s", msg)
	}
	srv.Close()
	if ok, _ := runProbe(context.Background(), tcp, target, time.Second); ok {
		t.Error("TCP probe of a closed port passed")
	}
}

func TestProbesAreNotRefused(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x",
		"livenessProbe":{"exec":{"command":["true"]}},"readinessProbe":{"httpGet":{"port":80}},"startupProbe":{"tcpSocket":{"port":80}}},
		{"name":"d","image":"x","livenessProbe":{}}]}}`)
	if got := unsupported(p); len(got) != 1 || got[0] != "spec.containers[1].livenessProbe (needs exactly one of exec, httpGet, tcpSocket)" {
		t.Errorf("unsupported: %q", got)
	}
}

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// statusOf waits for a status patch of default/name satisfying ok.
func (r *rig) statusOf(name string, ok func(v1.PodStatus) bool) v1.PodStatus {
	r.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last v1.PodStatus
	for {
		msg, err := r.cloud.Receive(ctx)
		if err != nil {
			r.tb.Fatalf("no matching status of %s: %v; last %+v", name, err, last)
		}
		if r.cloudTook(msg) || msg.Route.Operation != abi.OpPatch || msg.Route.Resource != "default/podpatch/"+name {
			continue
		}
		var p struct{ Status v1.PodStatus }
		if err := json.Unmarshal(msg.Content, &p); err != nil {
			r.tb.Fatalf("status patch: %v", err)
		}
		if last = p.Status; ok(last) {
			return last
		}
	}
}

// exec runs cmd in container id.
func (r *rig) exec(id string, cmd ...string) { r.output(id, cmd...) }

// output runs cmd in container id and returns its output.
func (r *rig) output(id string, cmd ...string) string {
	r.tb.Helper()
	cri, err := dialCRI(r.ctrd.Endpoint, time.Minute)
	if err != nil {
		r.tb.Fatal(err)
	}
	defer cri.close()
	code, out, err := cri.execSync(context.Background(), strings.TrimPrefix(id, containerIDPrefix), cmd, 10*time.Second)
	if err != nil || code != 0 {
		r.tb.Fatalf("exec %q: %d %v %s", cmd, code, err, out)
	}
	return string(out)
}

func podCondition(s v1.PodStatus, t v1.PodConditionType) v1.PodCondition {
	for _, c := range s.Conditions {
		if c.Type == t {
			return c
		}
	}
	return v1.PodCondition{}
}

// TestProbesOnContainerd runs probes against real containers: an HTTP
// readiness probe (busybox httpd) feeds the container's ready and the
// pod's Ready condition both ways; a TCP liveness probe on the same port
// keeps it alive; an exec liveness probe that starts failing gets its
// container killed and restarted (restartCount, lastState with the
// probe's message); a startup probe holds started, ready and liveness
// back until it passes; an exec probe slower than its timeoutSeconds
// fails; with restartPolicy Never a failed liveness probe leaves the pod
// Failed.
func TestProbesOnContainerd(t *testing.T) {
	r := newRig(t)
	mod := r.edged()
	r.run(mod)
	web, dead := freePort(t), freePort(t)
	r.insert("probes", fmt.Sprintf(`{"metadata":{"name":"probes","namespace":"default","uid":"uid-probes"},"spec":{
		"hostNetwork":true,"terminationGracePeriodSeconds":1,"containers":[
		{"name":"web","image":%[1]q,"command":["sh","-c","mkdir -p /www && exec httpd -f -p %[2]d -h /www"],
		 "ports":[{"name":"http","containerPort":%[2]d}],
		 "readinessProbe":{"httpGet":{"path":"/ready","port":"http"},"periodSeconds":1,"failureThreshold":1},
		 "livenessProbe":{"tcpSocket":{"port":%[2]d},"periodSeconds":1,"failureThreshold":3}},
		{"name":"worker","image":%[1]q,"command":["sh","-c","touch /tmp/healthy; exec sleep 3600"],
		 "livenessProbe":{"exec":{"command":["test","-f","/tmp/healthy"]},"periodSeconds":1,"failureThreshold":2}},
		{"name":"slow","image":%[1]q,"command":["sleep","3600"],
		 "startupProbe":{"exec":{"command":["test","-f","/tmp/started"]},"periodSeconds":1,"failureThreshold":600},
		 "readinessProbe":{"exec":{"command":["sleep","3"]},"timeoutSeconds":1,"periodSeconds":1}}]}}`, containerd.BusyboxImage, web))

	// Running, but web is not ready (no /www/ready yet) and slow has not
	// started.
	s := r.statusOf("probes", func(s v1.PodStatus) bool {
		return s.Phase == v1.PodRunning && len(s.ContainerStatuses) == 3 && s.ContainerStatuses[0].State.Running != nil &&
			s.ContainerStatuses[1].State.Running != nil && s.ContainerStatuses[2].State.Running != nil
	})
	webID, slowID := s.ContainerStatuses[0].ContainerID, s.ContainerStatuses[2].ContainerID
	if s.ContainerStatuses[0].Ready || !s.ContainerStatuses[1].Ready || s.ContainerStatuses[2].Ready || *s.ContainerStatuses[2].Started {
		t.Fatalf("ready before the probes passed: %+v", s.ContainerStatuses)
	}
	if c := podCondition(s, v1.PodReady); c.Status != v1.ConditionFalse || c.Reason != "ContainersNotReady" || !strings.Contains(c.Message, "[web slow]") {
		t.Errorf("Ready condition: %+v", c)
	}

	// web becomes ready once its HTTP probe passes.
	r.exec(webID, "touch", "/www/ready")
	s = r.statusOf("probes", func(s v1.PodStatus) bool { return s.ContainerStatuses[0].Ready })
	if s.ContainerStatuses[2].Ready || podCondition(s, v1.PodReady).Status != v1.ConditionFalse {
		t.Errorf("slow ready before its startup probe passed: %+v", s.ContainerStatuses[2])
	}

	// slow's startup probe passes: started, but its readiness probe
	// (sleep 3 with timeoutSeconds 1) times out, so it never gets ready.
	r.exec(slowID, "touch", "/tmp/started")
	s = r.statusOf("probes", func(s v1.PodStatus) bool { return *s.ContainerStatuses[2].Started })
	if s.ContainerStatuses[2].Ready {
		t.Errorf("slow ready although its readiness probe times out")
	}

	// worker's liveness probe fails twice: killed, restarted, with the
	// reason in lastState.
	r.exec(s.ContainerStatuses[1].ContainerID, "rm", "/tmp/healthy")
	s = r.statusOf("probes", func(s v1.PodStatus) bool {
		return s.ContainerStatuses[1].RestartCount == 1 && s.ContainerStatuses[1].State.Running != nil
	})
	last := s.ContainerStatuses[1].LastTerminationState.Terminated
	if last == nil || last.ExitCode == 0 || !strings.Contains(last.Message, "failed liveness probe") || !strings.Contains(last.Message, `"test" "-f" "/tmp/healthy"`) {
		t.Errorf("worker's lastState after the liveness kill: %+v", last)
	}
	if s.ContainerStatuses[0].RestartCount != 0 || s.ContainerStatuses[0].ContainerID != webID {
		t.Errorf("web restarted although its TCP liveness probe passes: %+v", s.ContainerStatuses[0])
	}

	// web not ready again when its probe fails.
	r.exec(webID, "rm", "/www/ready")
	r.statusOf("probes", func(s v1.PodStatus) bool {
		return !s.ContainerStatuses[0].Ready && s.ContainerStatuses[0].ContainerID == webID
	})

	// restartPolicy Never: a failed liveness probe (nothing listens on
	// the port) kills the container for good.
	r.insert("doomed", fmt.Sprintf(`{"metadata":{"name":"doomed","namespace":"default","uid":"uid-doomed"},"spec":{
		"hostNetwork":true,"restartPolicy":"Never","terminationGracePeriodSeconds":1,"containers":[
		{"name":"c","image":%q,"command":["sleep","3600"],
		 "livenessProbe":{"tcpSocket":{"port":%d},"initialDelaySeconds":1,"periodSeconds":1,"failureThreshold":1}}]}}`, containerd.BusyboxImage, dead))
	s = r.statusOf("doomed", func(s v1.PodStatus) bool { return s.Phase == v1.PodFailed })
	if term := s.ContainerStatuses[0].State.Terminated; term == nil || s.ContainerStatuses[0].RestartCount != 0 || !strings.Contains(term.Message, "connection refused") {
		t.Errorf("doomed: %+v", s.ContainerStatuses[0])
	}
	if st := mod.Stats(); st.ProbeKills != 2 {
		t.Errorf("probe kills = %d, want 2 (worker, doomed)", st.ProbeKills)
	}
}
