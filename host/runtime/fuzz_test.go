package runtime

import "testing"

// FuzzDecodePod: any stored bytes either decode to a pod whose spec can
// be checked and translated, or are refused with an error; nothing
// panics.
func FuzzDecodePod(f *testing.F) {
	f.Add([]byte(`{"metadata":{"name":"a","uid":"u"},"spec":{"containers":[{"name":"c","image":"x","resources":{"limits":{"memory":"1Gi"}}}]}}`))
	f.Add([]byte(`{"metadata":{"uid":"u"},"spec":{"volumes":[{"name":"v"}],"containers":[{"name":"c","env":[{"name":"E","valueFrom":{}}]}]}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pod, err := decodePod(data)
		if err != nil {
			return
		}
		unsupported(pod)
		qosClass(pod)
		sandboxConfig(pod, 0, "/logs")
		for i := range pod.Spec.Containers {
			c := &pod.Spec.Containers[i]
			resources(c)
			containerConfig(pod, c, 0, c.Image, nil, nil)
		}
	})
}
