package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgehost/edgehost/abi"

	"github.com/edgehost/edgehost/internal/containerd"
	authv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// projectedPod has a projected volume of a configmap item, a whole
// secret, an optional missing configmap and downward API fields, and a
// downwardAPI volume of its labels and annotations.
const projectedPod = `{"metadata":{"name":"proj","namespace":"default","uid":"uid-proj","labels":{"app":"web","tier":"edge"},"annotations":{"note":"say \"hi\""}},
	"spec":{"hostNetwork":true,"containers":[{"name":"c","image":"%s","command":["sleep","3600"],
	"volumeMounts":[{"name":"all","mountPath":"/all"},{"name":"meta","mountPath":"/meta"}]}],
	"volumes":[{"name":"all","projected":{"defaultMode":416,"sources":[
		{"configMap":{"name":"site","items":[{"key":"mode","path":"cfg/mode","mode":256}]}},
		{"secret":{"name":"creds"}},
		{"configMap":{"name":"absent","optional":true}},
		{"downwardAPI":{"items":[{"path":"name","fieldRef":{"fieldPath":"metadata.name"}},{"path":"ns","fieldRef":{"fieldPath":"metadata.namespace"}}]}}]}},
	{"name":"meta","downwardAPI":{"items":[{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}},{"path":"annotations","fieldRef":{"fieldPath":"metadata.annotations"}}]}}]}}`

// noToken is the token source of pods with no serviceAccountToken source.
func noToken(pod *v1.Pod, _ *v1.ServiceAccountTokenProjection) (string, error) {
	return "", fmt.Errorf("pod %s asked for a token", pod.Name)
}

func TestProjectedAndDownwardVolumeFiles(t *testing.T) {
	p := mustPod(t, fmt.Sprintf(projectedPod, "x"))
	lookup := func(typ, ns, name string) (map[string]string, error) {
		switch typ + "/" + name {
		case "configmap/site":
			return map[string]string{"mode": "eco", "other": "x"}, nil
		case "secret/creds":
			return map[string]string{"password": "s3cret"}, nil
		}
		return nil, fmt.Errorf("%s %q %w", typ, name, errObjectMissing)
	}
	if bad := unsupported(p); len(bad) != 0 {
		t.Fatalf("refused: %q", bad)
	}
	paths, err := prepareVolumes(p, t.TempDir(), "192.0.2.9", lookup, noToken)
	if err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]struct {
		data string
		mode os.FileMode
	}{
		"all/cfg/mode": {"eco", 0o400}, "all/password": {"s3cret", 0o640}, "all/name": {"proj", 0o640}, "all/ns": {"default", 0o640},
		"meta/labels": {"app=\"web\"\ntier=\"edge\"", 0o644}, "meta/annotations": {`note="say \"hi\""`, 0o644},
	} {
		vol, file, _ := strings.Cut(rel, "/")
		full := filepath.Join(paths[vol], file)
		b, err := os.ReadFile(full)
		fi, _ := os.Stat(full)
		if err != nil || string(b) != want.data || fi.Mode().Perm() != want.mode {
			t.Errorf("%s: %q %v mode %v, want %q %v", rel, b, err, fi.Mode().Perm(), want.data, want.mode)
		}
	}
	if _, err := os.Stat(filepath.Join(paths["all"], "other")); !os.IsNotExist(err) {
		t.Errorf("a key not in items was projected: %v", err)
	}
	ms, _ := mounts(p, &p.Spec.Containers[0], paths)
	if len(ms) != 2 || !ms[0].Readonly || !ms[1].Readonly {
		t.Errorf("projected and downwardAPI mounts are not read-only: %v", ms)
	}

	// What cannot be projected is refused by name.
	q := mustPod(t, `{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x"}],"volumes":[
		{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"path":""}},{"downwardAPI":{"items":[{"path":"cpu","resourceFieldRef":{"resource":"limits.cpu"}}]}}]}},
		{"name":"d","downwardAPI":{"items":[{"path":"ip","fieldRef":{"fieldPath":"status.podIP"}}]}}]}}`)
	got := unsupported(q)
	for _, want := range []string{"spec.volumes[0].projected.sources[0].serviceAccountToken.path (empty)", "spec.volumes[0].projected.sources[1].downwardAPI.items[0].resourceFieldRef",
		`spec.volumes[1].downwardAPI.items[0].fieldRef.fieldPath "status.podIP"`} {
		if !slices.Contains(got, want) {
			t.Errorf("unsupported lacks %q: %q", want, got)
		}
	}
	// A missing configmap that is not optional is the container's error.
	p.Spec.Volumes[0].Projected.Sources[2].ConfigMap.Optional = nil
	if _, err := prepareVolumes(p, t.TempDir(), "", lookup, noToken); err == nil || !strings.Contains(err.Error(), `spec.volumes[0] (all): projected.sources[2]: configmap "absent" not found`) {
		t.Errorf("missing projected configmap: %v", err)
	}
}

// apiPod is a pod (name, service account, image) with the volume the API
// server adds to every pod whose account automounts its token.
const apiPod = `{"metadata":{"name":"%[1]s","namespace":"default","uid":"uid-%[1]s"},"spec":{"serviceAccountName":"%[2]s","hostNetwork":true,
	"containers":[{"name":"c","image":"%[3]s","command":["sleep","3600"],
		"volumeMounts":[{"name":"kube-api-access-4x2kq","mountPath":"/var/run/secrets/kubernetes.io/serviceaccount","readOnly":true}]}],
	"volumes":[{"name":"kube-api-access-4x2kq","projected":{"defaultMode":420,"sources":[
		{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},
		{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}},
		{"downwardAPI":{"items":[{"path":"namespace","fieldRef":{"apiVersion":"v1","fieldPath":"metadata.namespace"}}]}}]}}]}}`

// until serves the cloud's side (token queries) until cond holds, for up
// to a minute.
func (r *rig) until(what string, cond func() bool) {
	r.tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			r.tb.Fatalf("timed out waiting for %s", what)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		if msg, err := r.cloud.Receive(ctx); err == nil {
			r.cloudTook(msg)
		}
		cancel()
	}
}

// TestProjectedVolumeOnContainerd: the projected and downwardAPI volumes
// reach a real container, read-only. The API server's kube-api-access
// volume gets its token from the cloud through meta, refreshed in place
// at 80 % of its lifetime; a pod whose token the cloud never answers for
// says so in its status; a module restarted offline writes the stored
// token without asking.
func TestProjectedVolumeOnContainerd(t *testing.T) {
	r := newRig(t)
	mod := r.edged()
	stop := r.run(mod)
	for _, obj := range []struct{ key, content string }{
		{"default/configmap/site", `{"metadata":{"name":"site","namespace":"default"},"data":{"mode":"eco"}}`},
		{"default/secret/creds", `{"metadata":{"name":"creds","namespace":"default"},"data":{"password":"czNjcmV0"}}`},
	} {
		r.send("insert", obj.key, obj.content)
	}
	r.insert("proj", fmt.Sprintf(projectedPod, containerd.BusyboxImage))
	s := r.statusOf("proj", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	out := r.output(s.ContainerStatuses[0].ContainerID, "sh", "-c", `cat /all/cfg/mode /all/password /all/name; echo; cat /meta/labels; echo; touch /all/x 2>/dev/null || echo read-only`)
	if out != "ecos3cretproj\napp=\"web\"\ntier=\"edge\"\nread-only\n" {
		t.Errorf("in the container: %q", out)
	}

	// The cloud mints a token per request; the first one lives 5 s only
	// (as an API server's --service-account-max-token-expiration caps
	// it), so the refresh comes soon.
	r.send("insert", "default/configmap/kube-root-ca.crt", `{"metadata":{"name":"kube-root-ca.crt","namespace":"default"},"data":{"ca.crt":"CA PEM\n"}}`)
	r.connect(true)
	var asked []authv1.TokenRequest
	r.answerToken = func(q abi.Message) (abi.Message, bool) {
		if strings.HasSuffix(q.Route.Resource, "/mute") {
			return abi.Message{}, false
		}
		var tr authv1.TokenRequest
		if err := json.Unmarshal(q.Content, &tr); err != nil || q.Route.Resource != "default/serviceaccounttoken/app" {
			t.Errorf("token query %s %s: %v", q.Route.Resource, q.Content, err)
		}
		asked = append(asked, tr)
		ttl := *tr.Spec.ExpirationSeconds
		if len(asked) == 1 {
			ttl = 5
		}
		tr.Spec.ExpirationSeconds = &ttl
		tr.Status.Token = fmt.Sprintf("token-%d", len(asked))
		tr.Status.ExpirationTimestamp = metav1.NewTime(time.Now().Add(time.Duration(ttl) * time.Second))
		b, _ := json.Marshal(tr)
		return abi.Message{Route: abi.Route{Source: "edgecontroller", Group: "resource", Operation: abi.OpResponse, Resource: q.Route.Resource}, Content: b}, true
	}
	r.insert("api", fmt.Sprintf(apiPod, "api", "app", containerd.BusyboxImage))
	s = r.statusOf("api", func(s v1.PodStatus) bool { return s.Phase == v1.PodRunning })
	id := s.ContainerStatuses[0].ContainerID
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	if out := r.output(id, "sh", "-c", "cd "+sa+" && cat token; echo; cat namespace ca.crt; stat -c %a token"); out != "token-1\ndefaultCA PEM\n644\n" {
		t.Errorf("kube-api-access in the container: %q", out)
	}
	if b := asked[0].Spec.BoundObjectRef; len(asked) != 1 || asked[0].Spec.Audiences != nil || *asked[0].Spec.ExpirationSeconds != 3607 || b.Kind != "Pod" || b.Name != "api" || b.UID != "uid-api" {
		t.Errorf("token requests %+v", asked)
	}
	r.until("the token refreshed", func() bool { return r.output(id, "cat", sa+"/token") == "token-2" })
	if st := mod.Stats(); st.Restarted != 0 || st.Created != 2 {
		t.Errorf("the refresh touched the containers: %+v", st)
	}

	// The cloud never answers for mute's account: its status says so,
	// first that it waits, then meta's timeout.
	waiting := func(want ...string) func(v1.PodStatus) bool {
		return func(s v1.PodStatus) bool {
			if len(s.ContainerStatuses) != 1 || s.ContainerStatuses[0].State.Waiting == nil {
				return false
			}
			w := s.ContainerStatuses[0].State.Waiting
			for _, x := range want {
				if !strings.Contains(w.Message, x) {
					return false
				}
			}
			return w.Reason == "CreateContainerConfigError"
		}
	}
	r.insert("mute", fmt.Sprintf(apiPod, "mute", "mute", containerd.BusyboxImage))
	r.statusOf("mute", waiting("spec.volumes[0] (kube-api-access-4x2kq): projected.sources[0]: service account token of default/mute for the pod: asked the cloud"))
	r.statusOf("mute", waiting("remote query default/serviceaccounttoken/mute", "context deadline exceeded"))

	// Offline, a new module writes api's token from the store, asking
	// nobody; mute's says no token is stored.
	stop()
	r.connect(false)
	tokenFile := filepath.Join(r.dir, "uid-api", "volumes", "projected", "kube-api-access-4x2kq", "token")
	if err := os.Remove(tokenFile); err != nil {
		t.Fatal(err)
	}
	queries := r.tokenQueries
	r.run(r.edged())
	r.statusOf("mute", waiting("the cloud is not connected and no token is stored for this pod"))
	r.until("the stored token written", func() bool { b, _ := os.ReadFile(tokenFile); return string(b) == "token-2" })
	if r.tokenQueries != queries {
		t.Errorf("%d token queries reached the cloud while it was away", r.tokenQueries-queries)
	}
}
