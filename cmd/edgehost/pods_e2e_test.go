package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgehost/edgehost/internal/containerd"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podRig is a hubRig whose daemon runs pods on a real containerd.
type podRig struct {
	*hubRig
	ctrd *containerd.Containerd
	cri  runtimeapi.RuntimeServiceClient
}

func newPodRig(t *testing.T) *podRig {
	ctrd := containerd.Start(t)
	r := newHubRigWith(t, rigOptions{modules: fmt.Sprintf("  edged:\n    enable: true\n    criEndpoint: %s\n    restartBackoff: 1s\n    maxRestartBackoff: 4s\n    nodeLeaseDuration: 4s\n", ctrd.Endpoint)})
	return &podRig{hubRig: r, ctrd: ctrd, cri: ctrd.CRI()}
}

// dockerBusybox is the busybox image imported from a docker-archive.
const dockerBusybox = "localhost/busybox:docker"

// start starts the daemon and brings the test images to the node with
// `edgehost image import`, as an operator of a site without a registry
// would: the pause and busybox images as OCI layout tars, busybox again
// as a docker-archive (dockerBusybox).
func (r *podRig) start() {
	t := r.t
	t.Helper()
	r.hubRig.start()
	dir := t.TempDir()
	started := time.Now()
	out, code := edgehost(t, r.bin, "", "image", "import", containerd.PauseTar(t, dir), containerd.BusyboxTar(t, dir),
		containerd.BusyboxDockerTar(t, dir, dockerBusybox), "--data-dir", r.dataDir)
	t.Logf("edgehost image import of three archives: %s\n%s", time.Since(started).Round(time.Millisecond), out)
	for _, img := range []string{containerd.PauseImage, containerd.BusyboxImage, dockerBusybox} {
		if code != 0 || !strings.Contains(out, img+"  ") || !strings.Contains(out, "sha256:") {
			t.Fatalf("image import: exit %d: %s\ndaemon logs:\n%s", code, out, r.d.logs)
		}
	}
}

// apply sends an object to the node with `edgehost hub apply`, as the
// cloud's edgecontroller would.
func (r *podRig) apply(op, yaml string) {
	t := r.t
	t.Helper()
	file := filepath.Join(t.TempDir(), "object.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := edgehost(t, r.bin, "", "hub", "apply", "--data-dir", r.hub.dir, "-f", file, "--node", "peer-node", "--op", op, "--timeout", "30s")
	if code != 0 || !strings.Contains(out, "acknowledged by peer-node") {
		t.Fatalf("hub apply: exit %d: %s\nhub logs:\n%s\ndaemon logs:\n%s", code, out, r.hub.logs, r.d.logs)
	}
}

// podPatch is the part of a pod status patch the tests read.
type podPatch struct {
	Metadata struct {
		UID string `json:"uid"`
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		Reason     string `json:"reason"`
		Message    string `json:"message"`
		HostIP     string `json:"hostIP"`
		PodIP      string `json:"podIP"`
		StartTime  string `json:"startTime"`
		QOSClass   string `json:"qosClass"`
		Conditions []struct {
			Type, Status string
		} `json:"conditions"`
		ContainerStatuses     []containerDoc `json:"containerStatuses"`
		InitContainerStatuses []containerDoc `json:"initContainerStatuses"`
	} `json:"status"`
}

// containerDoc is the part of a container status the tests read.
type containerDoc struct {
	Name         string         `json:"name"`
	Ready        bool           `json:"ready"`
	RestartCount int            `json:"restartCount"`
	ContainerID  string         `json:"containerID"`
	ImageID      string         `json:"imageID"`
	State        map[string]any `json:"state"`
	LastState    map[string]any `json:"lastState"`
}

// stateOf is a container status's state key and its fields.
func stateOf(m map[string]any) (string, map[string]any) {
	for k, v := range m {
		inner, _ := v.(map[string]any)
		return k, inner
	}
	return "", nil
}

func (p podPatch) condition(typ string) string {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// state is the container's state key (running, waiting, terminated) and
// its reason.
func (p podPatch) state(i int, which string) (string, map[string]any) {
	cs := p.Status.ContainerStatuses[i]
	if which == "last" {
		return stateOf(cs.LastState)
	}
	return stateOf(cs.State)
}

// awaitPatch waits for a status patch of ns/name that satisfies ok and
// returns it.
func (r *podRig) awaitPatch(ns, name string, ok func(podPatch) bool) podPatch {
	t := r.t
	t.Helper()
	var last podPatch
	match := func(e envelope) bool {
		if e.Route["operation"] != "patch" || e.Route["resource"] != ns+"/podpatch/"+name || e.Route["source"] != "edged" {
			return false
		}
		s, isString := e.Content.(string)
		if !isString {
			t.Fatalf("podpatch content is %T, edgecore sends a string", e.Content)
		}
		var p podPatch
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			t.Fatalf("podpatch content: %v: %s", err, s)
		}
		last = p
		return ok(p)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, f := range r.hub.frames(t) {
			if f.Dir == "edge->cloud" {
				if e := f.envelope(t); match(e) {
					return last
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching status patch of %s/%s after 60s; last: %+v\ndaemon logs:\n%s\ncontainerd:\n%s", ns, name, last.Status, r.d.logs, r.ctrd.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// exec runs cmd in a container through CRI and returns its stdout.
func (r *podRig) exec(containerID string, cmd ...string) string {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := r.cri.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: strings.TrimPrefix(containerID, "containerd://"), Cmd: cmd, Timeout: 10})
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("exec %v: %v %s", cmd, err, out.GetStderr())
	}
	return string(out.Stdout)
}

// podObjects are what CRI holds for pod uid.
func (r *podRig) podObjects(uid string) (sandboxes, containers int) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sel := map[string]string{"io.kubernetes.pod.uid": uid}
	sbs, err := r.cri.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := r.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		t.Fatal(err)
	}
	return len(sbs.Items), len(cs.Containers)
}

const siteConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: site, namespace: default, uid: cm-site, resourceVersion: "3"}
data: {mode: eco, greeting: hello from the cloud}
`

const siteSecret = `apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default, uid: sec-creds, resourceVersion: "4"}
data: {password: czNjcmV0}
`

const webPod = `apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, uid: uid-web, resourceVersion: "10"}
spec:
  restartPolicy: Always
  terminationGracePeriodSeconds: 1
  containers:
    - name: main
      image: localhost/busybox:local
      command: [sh, -c, 'n=$(($(cat /scratch/runs 2>/dev/null || echo 0)+1)); echo $n > /scratch/runs; echo "run $n"; exec sleep 3600']
      env:
        - {name: MODE, valueFrom: {configMapKeyRef: {name: site, key: mode}}}
        - {name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
        - {name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}
      resources:
        limits: {memory: 64Mi, cpu: 500m}
        requests: {memory: 32Mi, cpu: 100m}
      volumeMounts:
        - {name: site, mountPath: /etc/site}
        - {name: scratch, mountPath: /scratch}
        - {name: creds, mountPath: /etc/creds}
  volumes:
    - {name: site, configMap: {name: site}}
    - {name: creds, secret: {secretName: creds, defaultMode: 0400}}
    - {name: scratch, emptyDir: {}}
`

// TestPodsOnContainerd: a Pod sent by `hub apply` runs a busybox
// container (image built here as an OCI tar and imported) on a real
// containerd; its status reaches the hub as Running with kubectl's
// fields; configmap and secret env and volumes reach the container; the memory
// limit is set and enforced (OOMKilled); the container killed is
// restarted per restartPolicy with its lastState; bad pods (an
// unsupported field, a missing image, a missing configmap volume) each
// get a clear reason while the others run; a graceful delete kills the
// pod and sends the edge's delete upstream; the pod deleted leaves nothing
// in CRI.
func TestPodsOnContainerd(t *testing.T) {
	r := newPodRig(t)
	r.start()
	r.awaitFrames(route("twin", "resource", "get", "membership/detail"), 1)
	r.apply("insert", siteConfigMap)
	r.apply("insert", siteSecret)
	r.apply("insert", webPod)

	p := r.awaitPatch("default", "web", func(p podPatch) bool { return p.Status.Phase == "Running" })
	t.Logf("Running status patch: %+v", p)
	cs := p.Status.ContainerStatuses
	if p.Metadata.UID != "uid-web" || len(cs) != 1 || cs[0].Name != "main" || !cs[0].Ready || cs[0].RestartCount != 0 ||
		!strings.HasPrefix(cs[0].ContainerID, "containerd://") || !strings.HasPrefix(cs[0].ImageID, "sha256:") ||
		p.Status.PodIP == "" || p.Status.StartTime == "" || p.Status.QOSClass != "Burstable" ||
		p.condition("Ready") != "True" || p.condition("ContainersReady") != "True" || p.condition("PodScheduled") != "True" {
		t.Fatalf("Running status: %+v", p)
	}
	if k, _ := p.state(0, "now"); k != "running" {
		t.Fatalf("container state %v, want running", cs[0].State)
	}
	id := cs[0].ContainerID

	// The node registered and reported its status as kubelet does.
	reg := r.awaitFrames(route("edged", "meta", "insert", "null/node/peer-node"), 1)[0]
	if n, _ := reg.Content.(map[string]any); n["kind"] != "Node" || n["metadata"].(map[string]any)["name"] != "peer-node" {
		t.Errorf("node registration: %v", reg.Content)
	}
	np := r.awaitFrames(route("edged", "meta", "patch", "null/nodepatch/peer-node"), 1)[0]
	var node struct {
		Status struct {
			Capacity   map[string]string
			Conditions []struct{ Type, Status string }
			NodeInfo   struct{ KubeletVersion, ContainerRuntimeVersion string }
		}
	}
	if s, ok := np.Content.(string); !ok || json.Unmarshal([]byte(s), &node) != nil {
		t.Fatalf("nodepatch content %T %v: edgecore sends a string", np.Content, np.Content)
	}
	if node.Status.Capacity["pods"] != "110" || node.Status.Capacity["cpu"] == "" || node.Status.Capacity["memory"] == "" ||
		!strings.HasPrefix(node.Status.NodeInfo.KubeletVersion, "v1.32.10-kubeedge-") || !strings.HasPrefix(node.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") ||
		len(node.Status.Conditions) != 4 || node.Status.Conditions[3].Type != "Ready" || node.Status.Conditions[3].Status != "True" {
		t.Errorf("node status: %+v", node.Status)
	}
	// The node lease, as kubelet's lease controller sends it through
	// edgecore: created, then renewed every quarter of its duration.
	r.awaitFrames(route("edged", "meta", "insert", "kube-node-lease/lease/peer-node"), 1)
	for _, l := range r.awaitFrames(route("edged", "meta", "update", "kube-node-lease/lease/peer-node"), 2) {
		lease := leaseOf(t, l)
		if lease.Kind != "Lease" || lease.APIVersion != "coordination.k8s.io/v1" || lease.Metadata.Namespace != "kube-node-lease" ||
			lease.Metadata.Name != "peer-node" || lease.Spec.HolderIdentity != "peer-node" || lease.Spec.LeaseDurationSeconds != 4 || lease.Spec.RenewTime.IsZero() {
			t.Errorf("lease: %+v", lease)
		}
	}
	if got := r.exec(id, "sh", "-c", `echo "$MODE $POD $PASSWORD"; cat /etc/site/greeting; echo; cat /etc/creds/password; echo; stat -c %a /etc/creds/password; ls /scratch && echo ok`); got != "eco web s3cret\nhello from the cloud\ns3cret\n400\nruns\nok\n" {
		t.Errorf("configmap and secret env and volumes in the container: %q", got)
	}
	if got := strings.TrimSpace(r.exec(id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")); got != strconv.Itoa(64<<20) {
		t.Errorf("memory limit in the container's cgroup = %s, want %d", got, 64<<20)
	}

	// Killed from outside (SIGKILL to its process): restarted, once, with
	// the kill in lastState.
	r.killContainer(id)
	p = r.awaitPatch("default", "web", func(p podPatch) bool {
		return p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount == 1 && p.Status.ContainerStatuses[0].Ready
	})
	if k, last := p.state(0, "last"); k != "terminated" || last["exitCode"] != float64(137) {
		t.Errorf("lastState after the kill: %v", p.Status.ContainerStatuses[0].LastState)
	}
	if n := metricValue(t, r.dataDir, "edgehost_edged_container_restarts_total"); n != 1 {
		t.Errorf("edgehost_edged_container_restarts_total = %d after one kill", n)
	}

	// The memory limit is enforced: a container that allocates past it is
	// OOM-killed, and with restartPolicy Never the pod fails.
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: hog, namespace: default, uid: uid-hog}
spec:
  restartPolicy: Never
  hostNetwork: true
  containers:
    - name: hog
      image: localhost/busybox:docker
      command: [sh, -c, 'x=$(head -c 100000000 /dev/zero | tr "\0" a); echo survived']
      resources: {limits: {memory: 20Mi}}
`)
	p = r.awaitPatch("default", "hog", func(p podPatch) bool { return p.Status.Phase == "Failed" })
	if k, term := p.state(0, "now"); k != "terminated" || term["reason"] != "OOMKilled" {
		t.Errorf("hog: %v, want terminated OOMKilled", p.Status.ContainerStatuses[0].State)
	}

	// Bad input: each pod gets its reason; web keeps running.
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: probed, namespace: default, uid: uid-probed}
spec:
  containers:
    - name: c
      image: localhost/busybox:local
      livenessProbe: {grpc: {port: 9000}}
`)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: ghost, namespace: default, uid: uid-ghost}
spec:
  containers:
    - {name: c, image: "localhost/no-such-image:1"}
`)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: badvol, namespace: default, uid: uid-badvol}
spec:
  containers:
    - name: c
      image: localhost/busybox:local
      volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes:
    - {name: cfg, configMap: {name: absent}}
`)
	p = r.awaitPatch("default", "probed", func(p podPatch) bool { return p.Status.Phase == "Failed" })
	if p.Status.Reason != "UnsupportedPodSpec" || !strings.Contains(p.Status.Message, "spec.containers[0].livenessProbe.grpc") {
		t.Errorf("unsupported field: reason %q message %q", p.Status.Reason, p.Status.Message)
	}
	p = r.awaitPatch("default", "ghost", func(p podPatch) bool {
		k, w := p.state(0, "now")
		return k == "waiting" && w["reason"] == "ErrImagePull"
	})
	if _, w := p.state(0, "now"); p.Status.Phase != "Pending" || !strings.Contains(fmt.Sprint(w["message"]), "localhost/no-such-image:1") {
		t.Errorf("missing image: phase %s, waiting %v", p.Status.Phase, w)
	}
	p = r.awaitPatch("default", "badvol", func(p podPatch) bool {
		k, w := p.state(0, "now")
		return k == "waiting" && w["reason"] == "CreateContainerConfigError"
	})
	if _, w := p.state(0, "now"); !strings.Contains(fmt.Sprint(w["message"]), `configmap "absent" not found`) {
		t.Errorf("bad volume: waiting %v", w)
	}
	if n, _ := r.podObjects("uid-probed"); n != 0 {
		t.Errorf("the refused pod has %d sandboxes", n)
	}
	if got := r.exec(id2(r, "uid-web"), "echo", "alive"); got != "alive\n" {
		t.Errorf("web after the bad pods: %q", got)
	}
	// Bad image archives are refused with what is wrong, before ctr runs.
	dir := t.TempDir()
	notTar, nameless := filepath.Join(dir, "notes.txt"), filepath.Join(dir, "nameless.tar")
	os.WriteFile(notTar, []byte("not an image\n"), 0o644)
	if err := containerd.WriteImage(nameless, "", containerd.ImageConfig{}, []containerd.File{{Path: "x", Data: []byte("x"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{notTar: "not an importable image archive: not a tar file",
		nameless: "index.json manifests[0] (sha256:"} {
		out, code := edgehost(t, r.bin, "", "image", "import", file, "--data-dir", r.dataDir)
		if code != exitRemote || !strings.Contains(out, want) || !strings.Contains(out, "422") {
			t.Errorf("image import %s: exit %d: %s, want exit %d and %q", filepath.Base(file), code, out, exitRemote, want)
		}
	}

	// Logs through the API: the current run, and with -p the one killed
	// (the count is kept in the emptyDir, which outlives a container).
	for _, c := range []struct{ flag, want string }{{"", "run 2\n"}, {"-p", "run 1\n"}} {
		args := []string{"pod", "logs", "default/web", "-c", "main", "--data-dir", r.dataDir}
		if c.flag != "" {
			args = append(args, c.flag)
		}
		if out, code := edgehost(t, r.bin, "", args...); code != 0 || out != c.want {
			t.Errorf("pod logs %s: exit %d: %q, want %q", c.flag, code, out, c.want)
		}
	}
	if out, code := edgehost(t, r.bin, "", "pod", "logs", "default/nope", "--data-dir", r.dataDir); code == 0 || !strings.Contains(out, "pod default/nope: no such pod") {
		t.Errorf("pod logs of a pod not run: exit %d: %s", code, out)
	}
	// The operator's view: kubectl's columns.
	out, code := edgehost(t, r.bin, "", "pod", "list", "--data-dir", r.dataDir)
	for _, want := range []string{"NAMESPACE  NAME", "default    web     1/1    Running", "default    probed  0/0    UnsupportedPodSpec",
		"default    ghost   0/1    ImagePullBackOff", "default    badvol  0/1    CreateContainerConfigError", "default    hog     0/1    OOMKilled"} {
		// ghost: ErrImagePull on a pull, ImagePullBackOff between pulls.
		alt := strings.Replace(want, "ImagePullBackOff", "ErrImagePull    ", 1)
		if code != 0 || !strings.Contains(out, want) && !strings.Contains(out, alt) {
			t.Errorf("pod list lacks %q (exit %d):\n%s", want, code, out)
		}
	}

	// edgehost status counts them by phase: web runs; hog and probed
	// failed; ghost and badvol wait.
	if out, code := edgehost(t, r.bin, "", "status", "--data-dir", r.dataDir); code != 0 || !strings.Contains(out, "pods: 5 (Failed 2, Pending 2, Running 1)") {
		t.Errorf("status lacks the pods by phase (exit %d):\n%s", code, out)
	}

	// A pod as the API server gives it to a node: with the
	// kube-api-access volume it adds for the account's token. The token
	// comes from the hub through meta: a JWT for the API server's
	// audience, the 3607 s asked, bound to the pod.
	r.apply("insert", `apiVersion: v1
kind: ConfigMap
metadata: {name: kube-root-ca.crt, namespace: default, uid: cm-root-ca, resourceVersion: "5"}
data: {ca.crt: "the cluster CA"}
`)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: api, namespace: default, uid: uid-api}
spec:
  serviceAccountName: app
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: localhost/busybox:local
      command: [sleep, "3600"]
      volumeMounts: [{name: kube-api-access-9zq2v, mountPath: /var/run/secrets/kubernetes.io/serviceaccount, readOnly: true}]
  volumes:
    - name: kube-api-access-9zq2v
      projected:
        defaultMode: 420
        sources:
          - serviceAccountToken: {expirationSeconds: 3607, path: token}
          - configMap: {name: kube-root-ca.crt, items: [{key: ca.crt, path: ca.crt}]}
          - downwardAPI: {items: [{path: namespace, fieldRef: {apiVersion: v1, fieldPath: metadata.namespace}}]}
`)
	p = r.awaitPatch("default", "api", func(p podPatch) bool { return p.Status.Phase == "Running" })
	q := r.awaitFrames(route("edged", "meta", "query", "default/serviceaccounttoken/app"), 1)[0]
	if tr, _ := q.Content.(map[string]any); tr["kind"] != "TokenRequest" || tr["spec"].(map[string]any)["boundObjectRef"].(map[string]any)["uid"] != "uid-api" {
		t.Errorf("token query content: %v", q.Content)
	}
	sa := r.exec(p.Status.ContainerStatuses[0].ContainerID, "sh", "-c", "cd /var/run/secrets/kubernetes.io/serviceaccount && cat ca.crt; echo; cat namespace; echo; cat token")
	parts := strings.Split(sa, "\n")
	jwt := strings.Split(parts[len(parts)-1], ".")
	var claims struct {
		Aud      []string
		Exp, Iat int64
		Sub      string
		K8s      struct{ Pod struct{ Name, UID string } } `json:"kubernetes.io"`
	}
	if len(jwt) == 3 {
		payload, _ := base64.RawURLEncoding.DecodeString(jwt[1])
		json.Unmarshal(payload, &claims)
	}
	if !strings.HasPrefix(sa, "the cluster CA\ndefault\n") || claims.Sub != "system:serviceaccount:default:app" || len(claims.Aud) != 1 ||
		claims.Aud[0] != "https://kubernetes.default.svc.cluster.local" || claims.Exp-claims.Iat != 3607 || claims.K8s.Pod.UID != "uid-api" {
		t.Errorf("kube-api-access in the container: %q, claims %+v", sa, claims)
	}

	// Init containers run to completion in order before the app
	// container: the first sleeps, so the pod is seen initializing.
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: staged, namespace: default, uid: uid-staged}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  initContainers:
    - {name: fetch, image: localhost/busybox:local, command: [sh, -c, 'sleep 2; echo fetched > /work/order'], volumeMounts: [{name: work, mountPath: /work}]}
    - {name: migrate, image: localhost/busybox:local, command: [sh, -c, 'echo migrated >> /work/order'], volumeMounts: [{name: work, mountPath: /work}]}
  containers:
    - {name: app, image: localhost/busybox:local, command: [sh, -c, 'echo app >> /work/order; exec sleep 3600'], volumeMounts: [{name: work, mountPath: /work}]}
  volumes: [{name: work, emptyDir: {}}]
`)
	p = r.awaitPatch("default", "staged", func(p podPatch) bool {
		k, _ := stateOf(p.Status.InitContainerStatuses[0].State)
		return p.Status.Phase == "Pending" && k == "running"
	})
	if k, w := p.state(0, "now"); k != "waiting" || w["reason"] != "PodInitializing" || p.condition("Initialized") != "False" || len(p.Status.InitContainerStatuses) != 2 {
		t.Errorf("staged while its first init container runs: %+v", p.Status)
	}
	if out, _ := edgehost(t, r.bin, "", "pod", "list", "--data-dir", r.dataDir); listed(out, "staged") != "0/1 Init:0/2" {
		t.Errorf("pod list while initializing:\n%s", out)
	}
	p = r.awaitPatch("default", "staged", func(p podPatch) bool { return p.Status.Phase == "Running" })
	for _, ic := range p.Status.InitContainerStatuses {
		if k, term := stateOf(ic.State); k != "terminated" || term["reason"] != "Completed" || !ic.Ready {
			t.Errorf("init container %s after the pod runs: %v ready %v", ic.Name, ic.State, ic.Ready)
		}
	}
	if got := r.exec(p.Status.ContainerStatuses[0].ContainerID, "cat", "/work/order"); got != "fetched\nmigrated\napp\n" || p.condition("Initialized") != "True" {
		t.Errorf("order of the runs: %q; Initialized %s", got, p.condition("Initialized"))
	}
	if out, code := edgehost(t, r.bin, "", "pod", "logs", "default/staged", "-c", "fetch", "--data-dir", r.dataDir); code != 0 || out != "" {
		t.Errorf("pod logs of an init container: exit %d: %q", code, out)
	}

	// A failing init container is retried (restartPolicy Always: as
	// OnFailure) until it succeeds; under Never the pod fails and the app
	// container is never made. A sidecar (restartPolicy Always on an init
	// container) is refused by name.
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: flaky, namespace: default, uid: uid-flaky}
spec:
  hostNetwork: true
  initContainers:
    - {name: wait, image: localhost/busybox:local, command: [sh, -c, 'n=$(($(cat /w/n 2>/dev/null || echo 0)+1)); echo $n > /w/n; [ $n -ge 2 ] || exit 1'], volumeMounts: [{name: w, mountPath: /w}]}
  containers:
    - {name: app, image: localhost/busybox:local, command: [sleep, "3600"]}
  volumes: [{name: w, emptyDir: {}}]
`)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: doomed, namespace: default, uid: uid-doomed}
spec:
  restartPolicy: Never
  hostNetwork: true
  initContainers:
    - {name: check, image: localhost/busybox:local, command: [sh, -c, 'exit 3']}
  containers:
    - {name: app, image: localhost/busybox:local, command: [sleep, "3600"]}
`)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: sidecar, namespace: default, uid: uid-sidecar}
spec:
  initContainers:
    - {name: proxy, image: localhost/busybox:local, restartPolicy: Always, command: [sleep, "3600"]}
  containers:
    - {name: app, image: localhost/busybox:local, command: [sleep, "3600"]}
`)
	p = r.awaitPatch("default", "flaky", func(p podPatch) bool { return p.Status.Phase == "Running" })
	if ic := p.Status.InitContainerStatuses[0]; ic.RestartCount != 1 {
		t.Errorf("flaky's init container: restarts %d, want 1 (%v)", ic.RestartCount, ic)
	} else if k, last := stateOf(ic.LastState); k != "terminated" || last["exitCode"] != float64(1) {
		t.Errorf("flaky's init container lastState: %v", ic.LastState)
	}
	p = r.awaitPatch("default", "doomed", func(p podPatch) bool { return p.Status.Phase == "Failed" })
	if k, term := stateOf(p.Status.InitContainerStatuses[0].State); k != "terminated" || term["exitCode"] != float64(3) || p.Status.InitContainerStatuses[0].RestartCount != 0 {
		t.Errorf("doomed's init container: %v", p.Status.InitContainerStatuses[0])
	}
	if k, w := p.state(0, "now"); k != "waiting" || w["reason"] != "PodInitializing" {
		t.Errorf("doomed's app container: %v", p.Status.ContainerStatuses[0].State)
	}
	if _, ctrs := r.podObjects("uid-doomed"); ctrs != 1 {
		t.Errorf("doomed has %d containers, want its init container only", ctrs)
	}
	if out, _ := edgehost(t, r.bin, "", "pod", "list", "--data-dir", r.dataDir); listed(out, "doomed") != "0/1 Init:Error" {
		t.Errorf("pod list of a failed init:\n%s", out)
	}
	p = r.awaitPatch("default", "sidecar", func(p podPatch) bool { return p.Status.Phase == "Failed" })
	if p.Status.Reason != "UnsupportedPodSpec" || !strings.Contains(p.Status.Message, "spec.initContainers[0].restartPolicy (sidecar containers)") {
		t.Errorf("sidecar: %s %s", p.Status.Reason, p.Status.Message)
	}

	// imagePullSecrets: an image in a real registry with basic auth is
	// pulled with the credentials of the pod's dockerconfigjson secret;
	// without them, or with wrong ones, the pull fails and says why.
	registry := containerd.StartRegistry(t, "edge", "pull-s3cret")
	private := registry.Push(t, r.ctrd, containerd.BusyboxImage, "site/busybox:1", "edge", "pull-s3cret")
	for name, pass := range map[string]string{"regcred": "pull-s3cret", "wrongcred": "guess"} {
		cfg := fmt.Sprintf(`{"auths":{"http://%s":{"auth":%q}}}`, registry.Addr, base64.StdEncoding.EncodeToString([]byte("edge:"+pass)))
		r.apply("insert", fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: default, uid: sec-%s}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: %s}\n",
			name, name, base64.StdEncoding.EncodeToString([]byte(cfg))))
	}
	for name, secret := range map[string]string{"pulled": "regcred", "anon": "", "wrongpass": "wrongcred"} {
		secrets := ""
		if secret != "" {
			secrets = "  imagePullSecrets: [{name: " + secret + "}]\n"
		}
		r.apply("insert", fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: default, uid: uid-%s}\nspec:\n  hostNetwork: true\n%s  containers:\n    - {name: c, image: %q, imagePullPolicy: Always, command: [sleep, \"3600\"]}\n",
			name, name, secrets, private))
	}
	p = r.awaitPatch("default", "pulled", func(p podPatch) bool { return p.Status.Phase == "Running" })
	if !strings.HasPrefix(p.Status.ContainerStatuses[0].ImageID, registry.Addr+"/site/busybox@sha256:") {
		t.Errorf("pulled: %+v", p.Status.ContainerStatuses[0])
	}
	for name, want := range map[string]string{"anon": "401 Unauthorized", "wrongpass": "with the credentials for http://" + registry.Addr} {
		p = r.awaitPatch("default", name, func(p podPatch) bool {
			k, w := p.state(0, "now")
			return k == "waiting" && w["reason"] == "ErrImagePull"
		})
		if _, w := p.state(0, "now"); !strings.Contains(fmt.Sprint(w["message"]), want) {
			t.Errorf("%s: %v, want %q\nregistry:\n%s", name, w["message"], want, registry.Log())
		}
	}

	// The spec changed (in Kubernetes an image; here an env value): the
	// container is replaced, the sandbox kept.
	r.apply("update", strings.Replace(strings.Replace(webPod, `resourceVersion: "10"`, `resourceVersion: "11"`, 1),
		"{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}", "{name: POD, value: replaced}", 1))
	p = r.awaitPatch("default", "web", func(p podPatch) bool {
		return p.Status.Phase == "Running" && p.Status.ContainerStatuses[0].RestartCount == 2 && p.Status.ContainerStatuses[0].Ready
	})
	if got := r.exec(p.Status.ContainerStatuses[0].ContainerID, "sh", "-c", `echo $POD`); got != "replaced\n" {
		t.Errorf("env after the spec change: %q", got)
	}
	if sbs, _ := r.podObjects("uid-web"); sbs != 1 {
		t.Errorf("%d sandboxes of web after a container spec change, want 1", sbs)
	}

	// The cloud's graceful delete (deletionTimestamp set): the pod is
	// killed and the edge's half of the handshake goes up, a pod delete
	// with DeleteOptions naming the uid.
	r.apply("update", strings.Replace(webPod, `resourceVersion: "10"}`, `resourceVersion: "12", deletionTimestamp: "2026-01-01T00:00:00Z"}`, 1))
	del := r.awaitFrames(route("edged", "meta", "delete", "default/pod/web"), 1)[0]
	if opts, _ := del.Content.(map[string]any); opts["kind"] != "DeleteOptions" || opts["preconditions"].(map[string]any)["uid"] != "uid-web" {
		t.Errorf("pod delete upstream: %v", del.Content)
	}
	// Then the cloud's delete: nothing of it is left in CRI, nor its
	// volumes.
	r.apply("delete", strings.Replace(webPod, `resourceVersion: "10"`, `resourceVersion: "13"`, 1))
	deadline := time.Now().Add(60 * time.Second)
	for {
		sbs, ctrs := r.podObjects("uid-web")
		if sbs == 0 && ctrs == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the delete CRI still holds %d sandboxes and %d containers of web\n%s", sbs, ctrs, r.d.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(r.dataDir, "pods", "uid-web")); !os.IsNotExist(err) {
		t.Errorf("web's pod dir after the delete: %v", err)
	}
	r.d.stop(t)
}

// listed is the READY and STATUS columns of pod name in `pod list`'s
// output.
func listed(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == name {
			return f[2] + " " + f[3]
		}
	}
	return ""
}

// leaseDoc is the part of a Lease the tests read.
type leaseDoc struct {
	Kind, APIVersion string
	Metadata         struct{ Name, Namespace string }
	Spec             struct {
		HolderIdentity       string
		LeaseDurationSeconds int
		RenewTime            time.Time
	}
}

func leaseOf(t *testing.T, e envelope) leaseDoc {
	t.Helper()
	b, _ := json.Marshal(e.Content)
	var l leaseDoc
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatalf("lease content %s: %v", b, err)
	}
	return l
}

// id2 is the running container of pod uid.
func id2(r *podRig, uid string) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := r.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid}, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if err != nil || len(cs.Containers) != 1 {
		r.t.Fatalf("running containers of %s: %v %v", uid, cs, err)
	}
	return cs.Containers[0].Id
}

// killContainer sends SIGKILL to a container's process from the host, as
// a crash (CRI's verbose status names its pid).
func (r *podRig) killContainer(id string) {
	t := r.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := r.cri.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: strings.TrimPrefix(id, "containerd://"), Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Pid == 0 {
		t.Fatalf("container pid: %v %q", err, st.Info["info"])
	}
	if err := syscall.Kill(info.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// runningContainer waits until pod uid has a running container and
// returns its id.
func (r *podRig) runningContainer(uid string) string {
	t := r.t
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cs, err := r.cri.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
			LabelSelector: map[string]string{"io.kubernetes.pod.uid": uid}, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
		cancel()
		if err == nil && len(cs.Containers) == 1 {
			return cs.Containers[0].Id
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running container of %s after 60s: %v %v\ndaemon logs:\n%s", uid, cs, err, r.d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPodsComeBackOffline: with the hub stopped, edgehost killed -9 and
// containerd "rebooted" (every container stopped, containerd killed and
// started again), the restarted daemon brings the pod back from its
// store with no cloud, and the status it sent meanwhile reaches the hub
// once the hub is back.
func TestPodsComeBackOffline(t *testing.T) {
	r := newPodRig(t)
	r.start()
	r.awaitFrames(route("twin", "resource", "get", "membership/detail"), 1)
	r.apply("insert", `apiVersion: v1
kind: Pod
metadata: {name: keeper, namespace: default, uid: uid-keeper}
spec:
  hostNetwork: true
  containers:
    - {name: main, image: localhost/busybox:local, command: [sleep, "3600"]}
`)
	first := r.awaitPatch("default", "keeper", func(p podPatch) bool { return p.Status.Phase == "Running" }).Status.ContainerStatuses[0].ContainerID

	r.hub.kill()
	r.d.awaitStatus(t, r.bin, r.dataDir, false, "hub: not connected to the cloud")
	r.client.Disconnect(0)
	r.client = nil
	r.d.cmd.Process.Signal(syscall.SIGKILL)
	<-r.d.exited
	r.ctrd.Reboot()
	if sbs, _ := r.podObjects("uid-keeper"); sbs != 1 {
		t.Fatalf("after the reboot CRI holds %d sandboxes of keeper, want the dead one", sbs)
	}

	started := time.Now()
	r.d = launch(t, r.bin, "--config", r.cfg, "--data-dir", r.dataDir)
	relaunched := started
	again := r.runningContainer("uid-keeper")
	t.Logf("pod running again %s after the daemon was started, cloud down", time.Since(started).Round(time.Millisecond))
	if "containerd://"+again == first {
		t.Fatalf("the running container is the one from before the reboot")
	}
	if sbs, _ := r.podObjects("uid-keeper"); sbs != 1 {
		t.Errorf("CRI holds %d sandboxes of keeper, want the new one only", sbs)
	}

	// No lease is queued while the cloud is away: one would say "alive"
	// at a time long past when it arrives.
	if n := metricValue(t, r.dataDir, "edgehost_edged_node_leases_skipped_total"); n == 0 {
		t.Errorf("no lease renewal skipped while the cloud was away")
	}
	hubBack := time.Now()
	r.hub = startHub(t, r.bin, r.hub.dir, r.hub.ws, r.hub.certs)
	fresh := r.awaitFrames(func(e envelope) bool {
		return route("edged", "meta", "insert", "kube-node-lease/lease/peer-node")(e) && !leaseOf(t, e).Spec.RenewTime.Before(hubBack)
	}, 1)
	t.Logf("first lease after the cloud came back: %v", leaseOf(t, fresh[0]).Spec.RenewTime)
	for _, e := range r.awaitFrames(func(e envelope) bool { return e.Route["resource"] == "kube-node-lease/lease/peer-node" }, 1) {
		if rt := leaseOf(t, e).Spec.RenewTime; rt.After(relaunched) && rt.Before(hubBack) {
			t.Errorf("a lease renewed at %v, while the cloud was away (%v to %v), reached the cloud", rt, relaunched, hubBack)
		}
	}
	p := r.awaitPatch("default", "keeper", func(p podPatch) bool {
		return p.Status.Phase == "Running" && p.Status.ContainerStatuses[0].ContainerID == "containerd://"+again
	})
	if p.Status.ContainerStatuses[0].RestartCount != 1 {
		t.Errorf("restart count after the reboot = %d, want 1 (carried over from the dead sandbox)", p.Status.ContainerStatuses[0].RestartCount)
	}
	r.d.stop(t)
}
