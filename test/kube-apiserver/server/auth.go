package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// newTokenAuthenticator reads a kube-apiserver --token-auth-file (CSV: token,user,uid[,"g1,g2"]) once and
// authenticates "Authorization: Bearer <token>" requests with it; authenticated users get the
// system:authenticated group as with kube-apiserver.
func newTokenAuthenticator(path string) (authenticator.Request, error) {
	tokens, err := tokenfile.NewCSV(path)
	if err != nil {
		return nil, err
	}
	return group.NewAuthenticatedGroupAdder(bearertoken.New(tokens)), nil
}

// denyListAuthorizer allows every request except resource requests by users named in a file. The file is read
// on every authorization decision (it is small, and this way a test can deny and re-allow a user while the
// server runs). Non-resource requests (discovery, /version, /healthz, /openapi) stay allowed, as RBAC's
// system:discovery and system:public-info-viewer roles allow them to every authenticated user.
type denyListAuthorizer struct {
	path string
}

var _ authorizer.Authorizer = &denyListAuthorizer{}

func (d *denyListAuthorizer) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetUser() == nil {
		return authorizer.DecisionNoOpinion, "no user", nil
	}
	if !a.IsResourceRequest() || d.path == "" {
		return authorizer.DecisionAllow, "", nil
	}
	denied, err := d.denied(a.GetUser().GetName())
	if err != nil {
		// Fail closed, like an authorizer that cannot reach its policy.
		return authorizer.DecisionDeny, "cannot read the denied-users file", err
	}
	if denied {
		return authorizer.DecisionDeny, "", nil
	}
	return authorizer.DecisionAllow, "", nil
}

func (d *denyListAuthorizer) denied(name string) (bool, error) {
	data, err := os.ReadFile(d.path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if line == name {
			return true, nil
		}
	}
	return false, scanner.Err()
}
