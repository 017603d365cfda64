package colmena

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
)

// Settings are a node's deployment as fleet's host() and secret() take
// them: what both the colmena_hive builtin and the file `fleet init
// --from-colmena --expand` writes use, so that the two agree.
type Settings struct {
	Name, System  string
	TargetHost    *string // nil: not deployable (Note says why)
	TargetUser    *string // nil: unset, ssh_config or the local user decides
	TargetPort    *int    // nil: unset
	AllowLocal    bool
	BuildOnTarget bool
	Tags          []string
	Keys          []Key
	// Notes name each node's field fleet does not carry over, and why.
	Notes []string
}

// Note is the Notes in one line ("" without any).
func (s *Settings) Note() string { return strings.Join(s.Notes, "; ") }

var (
	// As fleet's host() checks them (builtins/host.go).
	addrRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:%-]*$`)
	userRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
	sudo   = []string{"sudo", "-H", "--"}
)

// Map is n's deployment for fleet. Nothing is replaced by a default:
// a value fleet cannot use is left unset with a note naming the field.
func (n *Node) Map() (*Settings, error) {
	if n.Err != "" {
		return nil, fmt.Errorf("colmena node %s does not evaluate: %s", n.Name, n.Err)
	}
	if !nameRE.MatchString(n.Name) {
		return nil, fmt.Errorf("colmena node %q: not a valid fleet host name (letters, digits, '.', '_' and '-', starting with a letter or digit)", n.Name)
	}
	if n.System == "" {
		return nil, fmt.Errorf("colmena node %s: its nixpkgs names no system", n.Name)
	}
	s := &Settings{Name: n.Name, System: n.System, TargetUser: n.TargetUser, TargetPort: n.TargetPort,
		AllowLocal: n.AllowLocalDeployment, BuildOnTarget: n.BuildOnTarget, Keys: n.Keys}
	note := func(format string, a ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, a...)) }
	switch th := n.TargetHost; {
	case th == nil:
		note("deployment.targetHost = null: only colmena apply-local deploys it, fleet does not")
	default:
		host := *th
		if i := strings.LastIndex(host, "@"); i >= 0 {
			user := host[:i]
			host = host[i+1:]
			if n.TargetUser != nil && *n.TargetUser != user {
				note("deployment.targetHost %q names user %s and deployment.targetUser is %q: fleet logs in as %s", *th, user, *n.TargetUser, user)
			}
			if !userRE.MatchString(user) {
				note("deployment.targetHost %q: user %q is not a user name fleet accepts: left unset", *th, user)
				s.TargetUser = nil
			} else {
				s.TargetUser = &user
			}
		}
		if !addrRE.MatchString(host) || len(host) > 253 {
			note("deployment.targetHost %q is not a host name or address fleet accepts: not deployable", *th)
		} else {
			s.TargetHost = &host
		}
	}
	if u := s.TargetUser; u != nil && (!userRE.MatchString(*u) || len(*u) > 32) {
		note("deployment.targetUser %q is not a user name fleet accepts: left unset", *u)
		s.TargetUser = nil
	}
	if p := n.TargetPort; p != nil && (*p < 1 || *p > 65535) {
		note("deployment.targetPort %d is not a port: left unset", *p)
		s.TargetPort = nil
	}
	for _, t := range n.Tags {
		if nameRE.MatchString(t) {
			s.Tags = append(s.Tags, t)
		} else {
			note("deployment.tags %q is not a fleet tag (letters, digits, '.', '_', '-'): left out", t)
		}
	}
	if !n.ReplaceUnknownProfiles {
		note("deployment.replaceUnknownProfiles = false: fleet replaces whatever profile the node runs")
	}
	if n.PrivilegeEscalationCommand != nil && !reflect.DeepEqual(n.PrivilegeEscalationCommand, sudo) {
		note("deployment.privilegeEscalationCommand %q: fleet uses sudo", n.PrivilegeEscalationCommand)
	}
	if len(n.SSHOptions) > 0 {
		note("deployment.sshOptions %q: not passed to ssh, put them in ssh_config", n.SSHOptions)
	}
	for _, k := range n.Keys {
		if k.Text == nil && k.KeyFile == nil && len(k.KeyCommand) == 0 {
			return nil, fmt.Errorf("colmena node %s: deployment.keys.%s has none of text, keyFile and keyCommand", n.Name, k.Attr)
		}
	}
	return s, nil
}
