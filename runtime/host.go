package runtime

import (
	"fmt"
	"sort"
	"strings"

	"go.starlark.net/starlark"
)

// DefaultPort and DefaultUser apply when neither fleet.star (target_port,
// target_user) nor ssh_config (Port, User) says: root is colmena's
// default (ssh's would be the local user).
const (
	DefaultPort = 22
	DefaultUser = "root"
)

// Host is one machine of the inventory, as declared by host(...) in
// fleet.star. It is immutable once created, so it can be shared between
// Starlark threads and used as a dict key (it hashes by name).
type Host struct {
	Name          string
	System        string
	TargetHost    string // "" when the host has no deployment target
	TargetUser    string // target_user; "" when not given (ssh_config decides)
	TargetPort    int    // target_port; 0 when not given (ssh_config decides)
	AllowLocal    bool
	BuildOnTarget bool
	Tags          []string
	Vars          *starlark.Dict // frozen
	NixOS         *NixosSystem   // nil when FlakeAttr is used
	FlakeAttr     string         // attr= as written: "<flake>#nixosConfigurations.NAME"
	Flake         string         // its flake, resolved: an absolute directory or a flake reference
	AttrPath      string         // its attribute path, after '#'
	Keys          []*Secret      // key files to upload

	// Substitute lets the host fetch what its own substituters have of a
	// closure before fleet pushes the rest: host(substitute = True), or
	// every host with run --substitute-on-destination (the CLI sets it
	// after loading, before any deploy reads the host, as SetEndpoint).
	Substitute bool

	// Pos is where host() was called, for error messages.
	Pos string

	// resolved is the target as ssh_config resolves it, if known
	// (SetEndpoint).
	resolved *endpoint
}

type endpoint struct {
	user  string
	port  int
	route string
}

// SetEndpoint records where fleet really logs in to the host, as
// ssh_config resolves its target: the user, the port, and the route as messages
// show it ("alice@10.0.0.5:2222 via bastion"). The CLI calls it once
// after loading, before any deploy reads the host.
func (h *Host) SetEndpoint(user string, port int, route string) {
	h.resolved = &endpoint{user, port, route}
}

// User is the user fleet logs in as: resolved by ssh_config if known,
// else target_user, else DefaultUser.
func (h *Host) User() string {
	switch {
	case h.resolved != nil:
		return h.resolved.user
	case h.TargetUser != "":
		return h.TargetUser
	}
	return DefaultUser
}

// Port is the port fleet connects to: resolved by ssh_config if known,
// else target_port, else DefaultPort.
func (h *Host) Port() int {
	switch {
	case h.resolved != nil:
		return h.resolved.port
	case h.TargetPort != 0:
		return h.TargetPort
	}
	return DefaultPort
}

var (
	_ starlark.HasAttrs = (*Host)(nil)
	_ starlark.Value    = (*Host)(nil)
)

// Deployable reports whether fleet can reach the host at all. Hosts
// without a target (the seed's clawfinger) are built by export tools
// but never deployed, like colmena nodes without deployment settings.
func (h *Host) Deployable() bool { return h.TargetHost != "" }

// Note says what fleet does differently from the host's source, such as
// why a colmena node is not deployable; "" for most hosts.
func (h *Host) Note() string {
	if h.NixOS != nil && h.NixOS.Colmena != nil {
		return h.NixOS.Colmena.Note
	}
	return ""
}

// NeedsSudo is fleet's privilege rule, in one place: a step that changes
// the system (push, activate, keys, reboot, rollback) runs through sudo
// when the user it logs in as is not root.
func NeedsSudo(user string) bool { return user != "root" }

// Sudo reports whether h's privileged steps go through sudo (the plan's
// "(sudo)"), for the resolved user if known; the executor applies
// NeedsSudo to the user it really logs in as.
func (h *Host) Sudo() bool { return NeedsSudo(h.User()) }

// Target is the SSH destination as "user@host:port" (and " via JUMP"),
// as ssh_config resolves it if known, or "-" when the host is not
// deployable.
func (h *Host) Target() string {
	if !h.Deployable() {
		return "-"
	}
	if h.resolved != nil {
		return h.resolved.route
	}
	host := h.TargetHost
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + host + "]"
	}
	return fmt.Sprintf("%s@%s:%d", h.User(), host, h.Port())
}

// HasTag reports whether tag is one of the host's tags.
func (h *Host) HasTag(tag string) bool {
	for _, t := range h.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// BuildDescription says how the host's system is built, for plans.
func (h *Host) BuildDescription() string {
	if h.FlakeAttr != "" {
		return h.FlakeAttr
	}
	if h.NixOS != nil {
		return h.NixOS.String()
	}
	return "-"
}

func (h *Host) String() string        { return fmt.Sprintf("host(%q)", h.Name) }
func (h *Host) Type() string          { return "host" }
func (h *Host) Freeze()               {}
func (h *Host) Truth() starlark.Bool  { return starlark.True }
func (h *Host) Hash() (uint32, error) { return starlark.String(h.Name).Hash() }

var hostAttrs = []string{
	"allow_local", "attr", "build_on_target", "deployable", "keys", "name", "nixos",
	"substitute", "system", "tags", "target", "target_host", "target_port", "target_user", "vars",
}

func init() { sort.Strings(hostAttrs) }

// AttrNames lists the fields a script can read; starlark uses it for
// "did you mean" hints on misspelled fields.
func (h *Host) AttrNames() []string { return hostAttrs }

// Attr returns a field of the host.
func (h *Host) Attr(name string) (starlark.Value, error) {
	switch name {
	case "name":
		return starlark.String(h.Name), nil
	case "system":
		return starlark.String(h.System), nil
	case "target_host":
		return noneIfEmpty(h.TargetHost), nil
	case "target_user":
		return starlark.String(h.User()), nil
	case "target_port":
		return starlark.MakeInt(h.Port()), nil
	case "target":
		return starlark.String(h.Target()), nil
	case "allow_local":
		return starlark.Bool(h.AllowLocal), nil
	case "build_on_target":
		return starlark.Bool(h.BuildOnTarget), nil
	case "substitute":
		return starlark.Bool(h.Substitute), nil
	case "deployable":
		return starlark.Bool(h.Deployable()), nil
	case "tags":
		tags := make([]starlark.Value, len(h.Tags))
		for i, t := range h.Tags {
			tags[i] = starlark.String(t)
		}
		return starlark.Tuple(tags), nil
	case "vars":
		return h.Vars, nil
	case "nixos":
		if h.NixOS == nil {
			return starlark.None, nil
		}
		return h.NixOS, nil
	case "attr":
		return noneIfEmpty(h.FlakeAttr), nil
	case "keys":
		keys := make([]starlark.Value, len(h.Keys))
		for i, k := range h.Keys {
			keys[i] = k
		}
		return starlark.Tuple(keys), nil
	}
	return nil, nil // starlark reports "host has no .x field (did you mean ...)"
}

func noneIfEmpty(s string) starlark.Value {
	if s == "" {
		return starlark.None
	}
	return starlark.String(s)
}
