package runtime

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func mustPod(t *testing.T, json string) *v1.Pod {
	t.Helper()
	p, err := decodePod([]byte(json))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDecodePodDefaults(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"busybox"},{"name":"d","image":"r/x:1.2"},{"name":"e","image":"r:5000/x"}]}}`)
	if p.Namespace != "default" || p.Spec.RestartPolicy != v1.RestartPolicyAlways {
		t.Errorf("defaults: ns %q policy %q", p.Namespace, p.Spec.RestartPolicy)
	}
	want := []v1.PullPolicy{v1.PullAlways, v1.PullIfNotPresent, v1.PullAlways}
	for i, c := range p.Spec.Containers {
		if c.ImagePullPolicy != want[i] {
			t.Errorf("%s (%s): pull policy %s, want %s", c.Name, c.Image, c.ImagePullPolicy, want[i])
		}
	}
	if _, err := decodePod([]byte(`{"metadata":{"name":"a"}}`)); err == nil || !strings.Contains(err.Error(), "metadata.uid") {
		t.Errorf("a pod without uid: %v", err)
	}
	if _, err := decodePod([]byte(`{"spec":[]}`)); err == nil {
		t.Error("a pod whose spec is an array decoded")
	}
}

func TestUnsupportedNamesFields(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{
		"initContainers":[{"name":"i","image":"x"},{"name":"side","image":"x","restartPolicy":"Always"},{"name":"p","image":"x","lifecycle":{},"startupProbe":{"exec":{"command":["true"]}}}],
		"volumes":[{"name":"pvc","persistentVolumeClaim":{"claimName":"c"}},{"name":"ok","emptyDir":{}}],
		"containers":[{"name":"c","image":"x","readinessProbe":{"grpc":{"port":80}},"livenessProbe":{"tcpSocket":{"port":80}},
			"volumeMounts":[{"name":"ok","mountPath":"/x","subPath":"s"}],
			"env":[{"name":"L","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['a']"}}}]}]}}`)
	got := unsupported(p)
	for _, want := range []string{"spec.initContainers[1].restartPolicy (sidecar containers)", "spec.initContainers[2] probes (sidecar containers)",
		"spec.initContainers[2].lifecycle", "spec.volumes[0] (pvc): persistentVolumeClaim", "spec.containers[0].readinessProbe.grpc",
		"spec.containers[0].volumeMounts[0].subPath", `spec.containers[0].env[0].valueFrom.fieldRef.fieldPath "metadata.labels['a']"`} {
		if !slices.Contains(got, want) {
			t.Errorf("unsupported lacks %q: %q", want, got)
		}
	}
	if slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "spec.initContainers[0]") }) {
		t.Errorf("a plain init container refused: %q", got)
	}
	if got := unsupported(mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"securityContext":{},"containers":[{"name":"c","image":"x"}]}}`)); len(got) != 0 {
		t.Errorf("a plain pod refused: %q", got)
	}
}

func TestResources(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[
		{"name":"a","image":"x","resources":{"limits":{"memory":"64Mi","cpu":"500m"},"requests":{"cpu":"100m"}}},
		{"name":"b","image":"x","resources":{"limits":{"cpu":"2"}}},
		{"name":"c","image":"x"}]}}`)
	a := resources(&p.Spec.Containers[0])
	if a.MemoryLimitInBytes != 64<<20 || a.CpuPeriod != 100000 || a.CpuQuota != 50000 || a.CpuShares != 102 {
		t.Errorf("a: %+v", a)
	}
	if b := resources(&p.Spec.Containers[1]); b.CpuQuota != 200000 || b.CpuShares != 2048 || b.MemoryLimitInBytes != 0 {
		t.Errorf("b (shares from the limit): %+v", b)
	}
	if c := resources(&p.Spec.Containers[2]); c.CpuQuota != 0 || c.CpuShares != 0 || c.MemoryLimitInBytes != 0 {
		t.Errorf("c (no resources): %+v", c)
	}
	if q := qosClass(p); q != v1.PodQOSBurstable {
		t.Errorf("qos %s", q)
	}
}

func TestEnvResolution(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"web","namespace":"ns","uid":"u"},"spec":{"containers":[{"name":"c","image":"x",
		"envFrom":[{"configMapRef":{"name":"cm"},"prefix":"CM_"}],
		"env":[{"name":"A","value":"1"},{"name":"B","value":"$(A)-$(CM_k)-$$(A)-$(NOPE)"},
			{"name":"S","valueFrom":{"secretKeyRef":{"name":"sec","key":"pw"}}},
			{"name":"N","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}},
			{"name":"H","valueFrom":{"fieldRef":{"fieldPath":"status.hostIP"}}},
			{"name":"O","valueFrom":{"configMapKeyRef":{"name":"gone","key":"k","optional":true}}}]}]}}`)
	lookup := func(typ, ns, name string) (map[string]string, error) {
		switch typ + "/" + ns + "/" + name {
		case "configmap/ns/cm":
			return map[string]string{"k": "v"}, nil
		case "secret/ns/sec":
			return map[string]string{"pw": "s3cret"}, nil
		}
		return nil, errObjectMissing
	}
	kvs, err := env(p, &p.Spec.Containers[0], "10.0.0.1", lookup)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range kvs {
		got = append(got, kv.Key+"="+string(kv.Value))
	}
	want := []string{"CM_k=v", "A=1", "B=1-v-$(A)-$(NOPE)", "S=s3cret", "N=web", "H=10.0.0.1"}
	if !slices.Equal(got, want) {
		t.Errorf("env = %q, want %q", got, want)
	}
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, v1.EnvVar{Name: "M", ValueFrom: &v1.EnvVarSource{
		ConfigMapKeyRef: &v1.ConfigMapKeySelector{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}, Key: "missing"}}})
	if _, err := env(p, &p.Spec.Containers[0], "", lookup); err == nil || !strings.Contains(err.Error(), "couldn't find key missing in configmap ns/cm") {
		t.Errorf("a missing key: %v", err)
	}
}

func TestSandboxAndContainerConfig(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"web","namespace":"ns","uid":"u","labels":{"app":"w"}},"spec":{"hostNetwork":true,
		"containers":[{"name":"c","image":"x:1","command":["sh"],"args":["-c","true"],"ports":[{"containerPort":80,"hostPort":8080}],
		"securityContext":{"privileged":true,"runAsUser":1000}}]}}`)
	sc := sandboxConfig(p, 2, "/logs")
	ns := sc.Linux.SecurityContext.NamespaceOptions
	if sc.Metadata.Uid != "u" || sc.Metadata.Attempt != 2 || sc.Hostname != "" || ns.Network != runtimeapi.NamespaceMode_NODE ||
		sc.Labels[labelManaged] != "true" || sc.Labels[labelPodUID] != "u" || sc.Labels["app"] != "w" || len(sc.PortMappings) != 0 {
		t.Errorf("sandbox config: %+v", sc)
	}
	cc := containerConfig(p, &p.Spec.Containers[0], 3, "sha256:abc", nil, nil)
	if cc.Metadata.Attempt != 3 || cc.Image.Image != "sha256:abc" || cc.Image.UserSpecifiedImage != "x:1" || !slices.Equal(cc.Command, []string{"sh"}) ||
		cc.Labels[labelContainerName] != "c" || cc.LogPath != "c/3.log" || !cc.Linux.SecurityContext.Privileged ||
		cc.Linux.SecurityContext.RunAsUser.GetValue() != 1000 {
		t.Errorf("container config: %+v", cc)
	}
	p.Spec.HostNetwork = false
	if sc := sandboxConfig(p, 0, "/logs"); sc.Hostname != "web" || len(sc.PortMappings) != 1 || sc.PortMappings[0].HostPort != 8080 {
		t.Errorf("pod-network sandbox: %+v", sc)
	}
}

func TestRestartDecisions(t *testing.T) {
	for _, c := range []struct {
		policy v1.RestartPolicy
		code   int32
		want   bool
	}{{v1.RestartPolicyAlways, 0, true}, {v1.RestartPolicyAlways, 1, true}, {v1.RestartPolicyOnFailure, 0, false},
		{v1.RestartPolicyOnFailure, 137, true}, {v1.RestartPolicyNever, 1, false}} {
		if got := shouldRestart(c.policy, c.code); got != c.want {
			t.Errorf("%s exit %d: restart %v, want %v", c.policy, c.code, got, c.want)
		}
	}
	m := New(nil, Config{RestartBackoff: 10 * time.Second, MaxRestartBackoff: 5 * time.Minute}, nil)
	var got []time.Duration
	for n := uint32(1); n <= 8; n++ {
		got = append(got, m.backoff(n))
	}
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 5 * time.Minute, 5 * time.Minute}
	if !slices.Equal(got, want) {
		t.Errorf("back-off = %v, want %v", got, want)
	}
}

func TestPhase(t *testing.T) {
	running := &runtimeapi.ContainerStatus{State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	ok := &runtimeapi.ContainerStatus{State: runtimeapi.ContainerState_CONTAINER_EXITED}
	bad := &runtimeapi.ContainerStatus{State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: 1}
	pod := func(policy v1.RestartPolicy) *v1.Pod {
		return &v1.Pod{Spec: v1.PodSpec{RestartPolicy: policy}}
	}
	for _, c := range []struct {
		name   string
		policy v1.RestartPolicy
		views  []*containerView
		want   v1.PodPhase
	}{
		{"one waiting", v1.RestartPolicyAlways, []*containerView{{cur: running}, {waiting: "ErrImagePull"}}, v1.PodPending},
		{"running", v1.RestartPolicyAlways, []*containerView{{cur: running}, {cur: ok}}, v1.PodRunning},
		{"crash loop (kubelet: Running)", v1.RestartPolicyAlways, []*containerView{{cur: bad, waiting: "CrashLoopBackOff"}}, v1.PodRunning},
		{"all done", v1.RestartPolicyNever, []*containerView{{cur: ok}, {cur: ok}}, v1.PodSucceeded},
		{"one failed, never", v1.RestartPolicyNever, []*containerView{{cur: ok}, {cur: bad}}, v1.PodFailed},
		{"one failed, on failure", v1.RestartPolicyOnFailure, []*containerView{{cur: bad}}, v1.PodRunning},
		{"done, always", v1.RestartPolicyAlways, []*containerView{{cur: ok}}, v1.PodRunning},
		{"init running", v1.RestartPolicyAlways, []*containerView{{init: true, cur: running}, {waiting: "PodInitializing"}}, v1.PodPending},
		{"init failed, retried", v1.RestartPolicyAlways, []*containerView{{init: true, policy: v1.RestartPolicyOnFailure, cur: bad, waiting: "CrashLoopBackOff"}, {waiting: "PodInitializing"}}, v1.PodPending},
		{"init failed, never", v1.RestartPolicyNever, []*containerView{{init: true, cur: ok}, {init: true, policy: v1.RestartPolicyNever, cur: bad}, {waiting: "PodInitializing"}}, v1.PodFailed},
		{"initialized", v1.RestartPolicyNever, []*containerView{{init: true, cur: ok}, {cur: running}}, v1.PodRunning},
		{"initialized, app done", v1.RestartPolicyNever, []*containerView{{init: true, cur: ok}, {cur: ok}}, v1.PodSucceeded},
	} {
		if got := phase(pod(c.policy), c.views); got != c.want {
			t.Errorf("%s: phase %s, want %s", c.name, got, c.want)
		}
	}
}

func TestConfigMapVolumeFiles(t *testing.T) {
	dir := t.TempDir()
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x","volumeMounts":[{"name":"cfg","mountPath":"/cfg"}]}],
		"volumes":[{"name":"cfg","configMap":{"name":"cm","items":[{"key":"a","path":"sub/a.txt"}]}},{"name":"host","hostPath":{"path":"`+dir+`/made","type":"DirectoryOrCreate"}}]}}`)
	data := map[string]string{"a": "one", "b": "two"}
	lookup := func(string, string, string) (map[string]string, error) { return data, nil }
	paths, err := prepareVolumes(p, filepath.Join(dir, "pod"), "192.0.2.9", lookup, noToken)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(paths["cfg"], "sub", "a.txt")); err != nil || string(b) != "one" {
		t.Errorf("item file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(paths["cfg"], "b")); !os.IsNotExist(err) {
		t.Errorf("a key not in items was written: %v", err)
	}
	if fi, err := os.Stat(paths["host"]); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate: %v", err)
	}
	ms, err := mounts(p, &p.Spec.Containers[0], paths)
	if err != nil || len(ms) != 1 || !ms[0].Readonly || ms[0].ContainerPath != "/cfg" {
		t.Errorf("mounts: %v %v", ms, err)
	}
	p.Spec.Volumes[0].ConfigMap.Items = []v1.KeyToPath{{Key: "a", Path: "../escape"}}
	if _, err := prepareVolumes(p, filepath.Join(dir, "pod"), "192.0.2.9", lookup, noToken); err == nil || !strings.Contains(err.Error(), "spec.volumes[0] (cfg): item path \"../escape\" leaves the volume") {
		t.Errorf("an escaping item path: %v", err)
	}
}

func TestSpecHashes(t *testing.T) {
	p := mustPod(t, `{"metadata":{"name":"a","uid":"u","annotations":{"x":"y"}},"spec":{"containers":[{"name":"c","image":"x:1"}]}}`)
	c := containerConfig(p, &p.Spec.Containers[0], 0, "x:1", nil, nil)
	sc := sandboxConfig(p, 0, "/l")
	if sc.Annotations["x"] != "y" || sc.Annotations[annotationSandboxHash] == "" || p.Annotations[annotationSandboxHash] != "" {
		t.Errorf("sandbox annotations %v (the pod's own: %v)", sc.Annotations, p.Annotations)
	}
	q := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x:2"}]}}`)
	if !changed(c.Annotations, annotationContainerHash, specHash(&q.Spec.Containers[0])) {
		t.Error("a new image is not a changed container spec")
	}
	if changed(c.Annotations, annotationContainerHash, specHash(&p.Spec.Containers[0])) {
		t.Error("the same spec counts as changed")
	}
	if sandboxHash(p) != sandboxHash(q) {
		t.Error("an image change changed the sandbox")
	}
	q.Spec.HostNetwork = true
	if !changed(sc.Annotations, annotationSandboxHash, sandboxHash(q)) {
		t.Error("hostNetwork on is not a changed sandbox")
	}
	if changed(map[string]string{}, annotationContainerHash, "h") {
		t.Error("a container without a recorded hash counts as changed")
	}
}

// Init containers' statuses: each in initContainerStatuses, ready once it
// completed, and the pod's Initialized condition naming those that have
// not.
func TestInitContainerStatus(t *testing.T) {
	m := New(nil, Config{}, nil)
	pod := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"initContainers":[{"name":"setup","image":"x"},{"name":"migrate","image":"x"}],"containers":[{"name":"app","image":"x"}]}}`)
	st := m.state("u")
	running := &runtimeapi.ContainerStatus{Id: "i1", State: runtimeapi.ContainerState_CONTAINER_RUNNING}
	done := &runtimeapi.ContainerStatus{Id: "i1", State: runtimeapi.ContainerState_CONTAINER_EXITED}
	views := func(first *runtimeapi.ContainerStatus) []*containerView {
		return []*containerView{{spec: &pod.Spec.InitContainers[0], init: true, cur: first}, {spec: &pod.Spec.InitContainers[1], init: true, waiting: "PodInitializing"},
			{spec: &pod.Spec.Containers[0], waiting: "PodInitializing"}}
	}
	s := m.podStatus(pod, st, nil, views(running))
	cond := func(s v1.PodStatus, typ v1.PodConditionType) v1.PodCondition {
		for _, c := range s.Conditions {
			if c.Type == typ {
				return c
			}
		}
		return v1.PodCondition{}
	}
	if len(s.InitContainerStatuses) != 2 || len(s.ContainerStatuses) != 1 || s.InitContainerStatuses[0].State.Running == nil ||
		s.InitContainerStatuses[1].State.Waiting.Reason != "PodInitializing" || s.ContainerStatuses[0].State.Waiting.Reason != "PodInitializing" || s.Phase != v1.PodPending {
		t.Errorf("initializing: %+v", s)
	}
	if c := cond(s, v1.PodInitialized); c.Status != v1.ConditionFalse || c.Reason != "ContainersNotInitialized" || c.Message != "containers with incomplete status: [setup migrate]" {
		t.Errorf("Initialized while initializing: %+v", c)
	}
	all := views(done)
	all[1].waiting, all[1].cur = "", &runtimeapi.ContainerStatus{Id: "i2", State: runtimeapi.ContainerState_CONTAINER_EXITED}
	all[2].waiting = "ContainerCreating"
	s = m.podStatus(pod, st, nil, all)
	if c := cond(s, v1.PodInitialized); c.Status != v1.ConditionTrue || !s.InitContainerStatuses[0].Ready || !s.InitContainerStatuses[1].Ready ||
		s.InitContainerStatuses[0].State.Terminated.Reason != "Completed" {
		t.Errorf("initialized: %+v %+v", c, s.InitContainerStatuses)
	}
}
