package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/edgehost/edgehost/internal/containerd"
	v1 "k8s.io/api/core/v1"
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
	paths, err := prepareVolumes(p, t.TempDir(), "192.0.2.9", lookup)
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
		{"name":"kube-api-access","projected":{"sources":[{"serviceAccountToken":{"path":"token"}},{"downwardAPI":{"items":[{"path":"cpu","resourceFieldRef":{"resource":"limits.cpu"}}]}}]}},
		{"name":"d","downwardAPI":{"items":[{"path":"ip","fieldRef":{"fieldPath":"status.podIP"}}]}}]}}`)
	got := unsupported(q)
	for _, want := range []string{"spec.volumes[0].projected.sources[0].serviceAccountToken", "spec.volumes[0].projected.sources[1].downwardAPI.items[0].resourceFieldRef",
		`spec.volumes[1].downwardAPI.items[0].fieldRef.fieldPath "status.podIP"`} {
		if !slices.Contains(got, want) {
			t.Errorf("unsupported lacks %q: %q", want, got)
		}
	}
	// A missing configmap that is not optional is the container's error.
	p.Spec.Volumes[0].Projected.Sources[2].ConfigMap.Optional = nil
	if _, err := prepareVolumes(p, t.TempDir(), "", lookup); err == nil || !strings.Contains(err.Error(), `spec.volumes[0] (all): projected.sources[2]: configmap "absent" not found`) {
		t.Errorf("missing projected configmap: %v", err)
	}
}

// TestProjectedVolumeOnContainerd: the projected and downwardAPI volumes
// reach a real container, read-only.
func TestProjectedVolumeOnContainerd(t *testing.T) {
	r := newRig(t)
	r.run(r.edged())
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
}
