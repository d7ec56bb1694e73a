package cloud

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/edgehost/edgehost/abi"
	"github.com/edgehost/edgehost/host/bus"
	"github.com/edgehost/edgehost/host/hub/wire"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Service account tokens, as the API server's TokenRequest makes them
// (CloudCore's edgecontroller passes the edge's query to CreateToken).
const (
	tokenType = "serviceaccounttoken"
	// TokenIssuer is the issuer and default audience of the tokens the
	// reference cloud mints, the API server's default.
	TokenIssuer          = "https://kubernetes.default.svc.cluster.local"
	defaultTokenLifetime = 3600
	minTokenLifetime     = 600
)

// isTokenQuery reports whether m is a node's query for a service account
// token, `{ns}/serviceaccounttoken/{sa}`.
func isTokenQuery(m abi.Message) bool {
	parts := strings.Split(m.Route.Resource, "/")
	return m.Route.Operation == abi.OpQuery && len(parts) == 3 && parts[1] == tokenType
}

// answerToken mints the token a node's TokenRequest asks for and answers
// with the TokenRequest and its status, as edgecontroller does; a request
// the API server would refuse gets an ObjectResp error.
func (c *session) answerToken(m abi.Message) {
	parts := strings.Split(m.Route.Resource, "/")
	ns, sa := parts[0], parts[2]
	content, err := c.srv.mintToken(c.node, ns, sa, m.Content)
	if err != nil {
		c.srv.log.Warn("token request refused", "node", c.node, "serviceaccount", ns+"/"+sa, "msg_id", m.Header.ID, "error", err)
		content, _ = json.Marshal(map[string]any{"Object": nil, "Err": err.Error()}) // plain values always marshal
	} else {
		c.srv.log.Info("service account token minted", "node", c.node, "serviceaccount", ns+"/"+sa, "msg_id", m.Header.ID)
	}
	r := m.Reply(abi.OpResponse, content)
	r.Route.Source, r.Route.Group = "edgecontroller", "resource"
	if err := c.srv.Send(c.node, r, wire.KindObject); err != nil {
		c.srv.log.Warn("token answer not sent", "node", c.node, "error", err)
	}
}

// tokenClaims are the claims of a Kubernetes service account token.
type tokenClaims struct {
	Issuer    string    `json:"iss"`
	Subject   string    `json:"sub"`
	Audience  []string  `json:"aud"`
	Expiry    int64     `json:"exp"`
	IssuedAt  int64     `json:"iat"`
	NotBefore int64     `json:"nbf"`
	ID        string    `json:"jti"`
	K8s       k8sClaims `json:"kubernetes.io"`
}

type k8sClaims struct {
	Namespace      string    `json:"namespace"`
	Node           *objClaim `json:"node,omitempty"`
	Pod            *objClaim `json:"pod,omitempty"`
	ServiceAccount objClaim  `json:"serviceaccount"`
}

type objClaim struct {
	Name string `json:"name"`
	UID  string `json:"uid,omitempty"`
}

// mintToken answers the TokenRequest body for service account ns/sa on
// node: its spec as the API server completes it (the default audience,
// the default lifetime) and a status with a JWT signed by the cloud's CA
// holding those audiences, that expiry and the bound pod.
func (s *Server) mintToken(node, ns, sa string, body []byte) ([]byte, error) {
	var tr authv1.TokenRequest
	if err := json.Unmarshal(body, &tr); err != nil {
		return nil, fmt.Errorf("token request for %s/%s: %w", ns, sa, err)
	}
	if tr.Spec.ExpirationSeconds == nil {
		exp := int64(defaultTokenLifetime)
		tr.Spec.ExpirationSeconds = &exp
	}
	if *tr.Spec.ExpirationSeconds < minTokenLifetime {
		return nil, fmt.Errorf("token request for %s/%s: spec.expirationSeconds %d: may not specify a duration less than 10 minutes", ns, sa, *tr.Spec.ExpirationSeconds)
	}
	if len(tr.Spec.Audiences) == 0 {
		tr.Spec.Audiences = []string{TokenIssuer}
	}
	now := time.Now()
	exp := now.Add(time.Duration(*tr.Spec.ExpirationSeconds) * time.Second)
	claims := tokenClaims{Issuer: TokenIssuer, Subject: "system:serviceaccount:" + ns + ":" + sa, Audience: tr.Spec.Audiences,
		Expiry: exp.Unix(), IssuedAt: now.Unix(), NotBefore: now.Unix(), ID: bus.NewID(),
		K8s: k8sClaims{Namespace: ns, Node: &objClaim{Name: node}, ServiceAccount: objClaim{Name: sa}}}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if ref.Kind != "Pod" {
			return nil, fmt.Errorf("token request for %s/%s: spec.boundObjectRef.kind %q: only Pod is supported", ns, sa, ref.Kind)
		}
		claims.K8s.Pod = &objClaim{Name: ref.Name, UID: string(ref.UID)}
	}
	jwt, err := s.ca.SignJWT(claims)
	if err != nil {
		return nil, err
	}
	tr.Kind, tr.APIVersion = "TokenRequest", "authentication.k8s.io/v1"
	tr.CreationTimestamp = metav1.NewTime(now)
	tr.Status = authv1.TokenRequestStatus{Token: jwt, ExpirationTimestamp: metav1.NewTime(exp)}
	return json.Marshal(tr)
}
