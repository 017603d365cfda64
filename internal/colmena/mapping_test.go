package colmena_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/colmena"
)

func ptr[T any](v T) *T { return &v }

// TestMap: colmena's deployment settings as fleet's host() takes them;
// what fleet cannot use is unset with a note, never a default.
func TestMap(t *testing.T) {
	base := func(edit func(n *colmena.Node)) *colmena.Node {
		n := &colmena.Node{Name: "n", System: "x86_64-linux", TargetHost: ptr("n"), TargetUser: ptr("root"),
			ReplaceUnknownProfiles: true, PrivilegeEscalationCommand: []string{"sudo", "-H", "--"}}
		edit(n)
		return n
	}
	for _, tc := range []struct {
		name       string
		node       *colmena.Node
		host, user *string
		port       *int
		tags       []string
		notes      []string
		err        string
	}{
		{"defaults", base(func(n *colmena.Node) {}), ptr("n"), ptr("root"), nil, nil, nil, ""},
		{"user@host, targetUser null", base(func(n *colmena.Node) { n.TargetHost, n.TargetUser = ptr("ops@h.example"), nil }),
			ptr("h.example"), ptr("ops"), nil, nil, nil, ""},
		{"user@host and targetUser", base(func(n *colmena.Node) { n.TargetHost = ptr("ops@h") }),
			ptr("h"), ptr("ops"), nil, nil, []string{`deployment.targetHost "ops@h" names user ops and deployment.targetUser is "root": fleet logs in as ops`}, ""},
		{"targetHost null", base(func(n *colmena.Node) { n.TargetHost = nil }),
			nil, ptr("root"), nil, nil, []string{"deployment.targetHost = null: only colmena apply-local deploys it, fleet does not"}, ""},
		{"bad host", base(func(n *colmena.Node) { n.TargetHost = ptr("-oProxyCommand=x") }),
			nil, ptr("root"), nil, nil, []string{`deployment.targetHost "-oProxyCommand=x" is not a host name or address fleet accepts: not deployable`}, ""},
		{"user null, port", base(func(n *colmena.Node) { n.TargetUser, n.TargetPort = nil, ptr(2222) }),
			ptr("n"), nil, ptr(2222), nil, nil, ""},
		{"port 0", base(func(n *colmena.Node) { n.TargetPort = ptr(0) }),
			ptr("n"), ptr("root"), nil, nil, []string{"deployment.targetPort 0 is not a port: left unset"}, ""},
		{"tags", base(func(n *colmena.Node) { n.Tags = []string{"web", "floor@2"} }),
			ptr("n"), ptr("root"), nil, []string{"web"}, []string{`deployment.tags "floor@2" is not a fleet tag (letters, digits, '.', '_', '-'): left out`}, ""},
		{"profiles", base(func(n *colmena.Node) { n.ReplaceUnknownProfiles = false }),
			ptr("n"), ptr("root"), nil, nil, []string{"deployment.replaceUnknownProfiles = false: fleet replaces whatever profile the node runs"}, ""},
		{"failed", base(func(n *colmena.Node) { n.Err = "boom" }), nil, nil, nil, nil, nil, "colmena node n does not evaluate: boom"},
		{"name", base(func(n *colmena.Node) { n.Name = "db+replica" }), nil, nil, nil, nil, nil, `colmena node "db+replica": not a valid fleet host name`},
		{"keyless key", base(func(n *colmena.Node) { n.Keys = []colmena.Key{{Attr: "k"}} }), nil, nil, nil, nil, nil, "deployment.keys.k has none of text, keyFile and keyCommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.node.Map()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.TargetHost, tc.host) || !reflect.DeepEqual(s.TargetUser, tc.user) || !reflect.DeepEqual(s.TargetPort, tc.port) ||
				!reflect.DeepEqual(s.Tags, tc.tags) || !reflect.DeepEqual(s.Notes, tc.notes) {
				t.Errorf("got host %v user %v port %v tags %q notes %q", deref(s.TargetHost), deref(s.TargetUser), deref(s.TargetPort), s.Tags, s.Notes)
			}
		})
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
