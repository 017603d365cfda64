package builtins

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const hostDoc = `host(name, system="x86_64-linux", target_host=None, target_user=None, target_port=None, allow_local=False, build_on_target=False, substitute=False, tags=[], vars={}, nixos=None, attr=None, keys=[])

Declares a machine of the inventory and returns it. Call it while
fleet.star loads (typically from your host factory); names are unique.
A host without target_host is part of the inventory (exports, hosts
listing) but never deployed. target_user and target_port, when given, win
over ~/.ssh/config (as ssh -l and -p do); when not, ssh_config's User and
Port apply, else root (colmena's default) and 22. Exactly one of nixos (a
nixos_system(...)) or attr ("<flake>#nixosConfigurations.NAME") says how
to build its system. vars is free data for your scripts and modules.
keys are secret(...) files uploaded on deploy. substitute = True lets
the host fetch what its own substituters (nix.conf) have of a closure
before fleet pushes the rest, as nix-copy-closure --use-substitutes does
(fleet run --substitute-on-destination does it for every host).
The returned value is frozen and hashable; read fields as h.name,
h.tags, h.target ("user@host:port"), h.deployable, ...`

var (
	systemRE = regexp.MustCompile(`^[a-z0-9_]+-[a-z0-9_]+$`)
	userRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	// addrRE admits DNS names, IPv4 and IPv6 literals; nothing a shell
	// or ssh could read as an option or a metacharacter.
	addrRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:%-]*$`)
)

func hostFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var (
		name                                      string
		system                                                   = "x86_64-linux"
		targetHost, targetUser, targetPort, nixos starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
		attr, tags, vars, keys                    starlark.Value = starlark.None, starlark.None, starlark.None, starlark.None
		allowLocal, buildOnTarget, substitute     bool
	)
	if err := starlark.UnpackArgs("host", args, kwargs,
		"name", &name, "system?", &system,
		"target_host?", &targetHost, "target_user?", &targetUser, "target_port?", &targetPort,
		"allow_local?", &allowLocal, "build_on_target?", &buildOnTarget,
		"substitute?", &substitute,
		"tags?", &tags, "vars?", &vars, "nixos?", &nixos, "attr?", &attr, "keys?", &keys,
	); err != nil {
		return nil, err
	}
	r, err := runOf(th, "host")
	if err != nil {
		return nil, err
	}
	if !runtime.ValidName(name) {
		return nil, fmt.Errorf("host(): name %q is not valid: use letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
	fail := func(format string, a ...any) error {
		return fmt.Errorf("host(%q): %s", name, fmt.Sprintf(format, a...))
	}
	if !systemRE.MatchString(system) {
		return nil, fail("system %q is not a Nix system such as \"x86_64-linux\" or \"aarch64-linux\"", system)
	}
	h := &runtime.Host{
		Name:          name,
		System:        system,
		AllowLocal:    allowLocal,
		BuildOnTarget: buildOnTarget,
		Substitute:    substitute,
		Pos:           th.CallFrame(1).Pos.String(),
	}
	if targetHost != starlark.None {
		a, ok := starlark.AsString(targetHost)
		if !ok {
			return nil, fail("target_host must be a string or None, got %s", targetHost.Type())
		}
		if !addrRE.MatchString(a) || len(a) > 253 {
			return nil, fail("target_host %q is not a host name or IP address", a)
		}
		h.TargetHost = a
	}
	if targetUser != starlark.None {
		u, ok := starlark.AsString(targetUser)
		if !ok {
			return nil, fail("target_user must be a string or None, got %s", targetUser.Type())
		}
		if !userRE.MatchString(u) || len(u) > 32 {
			return nil, fail("target_user %q is not a valid user name", u)
		}
		h.TargetUser = u
	}
	if targetPort != starlark.None {
		p, err := starlark.AsInt32(targetPort)
		if err != nil || p < 1 || p > 65535 {
			return nil, fail("target_port must be a port number between 1 and 65535, got %s", targetPort)
		}
		h.TargetPort = p
	}
	if h.Tags, err = stringList("host", "tags", tags); err != nil {
		return nil, fail("%v", strings.TrimPrefix(err.Error(), "host(): "))
	}
	for _, t := range h.Tags {
		if !runtime.ValidName(t) {
			return nil, fail("tag %q is not valid: use letters, digits, '.', '_' and '-'", t)
		}
	}
	h.Vars = starlark.NewDict(0)
	if vars != starlark.None {
		d, ok := vars.(*starlark.Dict)
		if !ok {
			return nil, fail("vars must be a dict, got %s", vars.Type())
		}
		for _, kv := range d.Items() {
			if _, ok := kv[0].(starlark.String); !ok {
				return nil, fail("vars keys must be strings, got %s", kv[0].Type())
			}
			h.Vars.SetKey(kv[0], kv[1])
		}
	}
	h.Vars.Freeze()
	// As deep as Nix can take them, checked here rather than in a
	// deploy; they lie inside the host's attribute set.
	if err := nixenc.CheckShape("vars", h.Vars, 1); err != nil {
		return nil, fail("%v", err)
	}
	if keys != starlark.None {
		seq, ok := keys.(starlark.Indexable)
		if !ok {
			return nil, fail("keys must be a list of secret(...), got %s", keys.Type())
		}
		seen := map[string]bool{}
		for i := 0; i < seq.Len(); i++ {
			k, ok := seq.Index(i).(*runtime.Secret)
			if !ok {
				return nil, fail("keys[%d] must be a secret(...), got %s", i, seq.Index(i).Type())
			}
			if seen[k.Dest] {
				return nil, fail("two keys for %s", k.Dest)
			}
			seen[k.Dest] = true
			h.Keys = append(h.Keys, k)
		}
	}

	switch {
	case nixos != starlark.None && attr != starlark.None:
		return nil, fail("give either nixos= or attr=, not both")
	case nixos != starlark.None:
		n, ok := nixos.(*runtime.NixosSystem)
		if !ok {
			return nil, fail("nixos must be a nixos_system(...), got %s", nixos.Type())
		}
		h.NixOS = n
	case attr != starlark.None:
		a, ok := starlark.AsString(attr)
		if !ok {
			return nil, fail("attr must be a string, got %s", attr.Type())
		}
		flake, path, ok := strings.Cut(a, "#")
		if !ok || path == "" || flake == "" {
			return nil, fail("attr %q: want \"<flake>#nixosConfigurations.NAME\", e.g. \".#nixosConfigurations.%s\"", a, name)
		}
		ref, err := flakeRef(r, th, flake)
		if err != nil {
			return nil, fail("attr: %v", err)
		}
		h.FlakeAttr, h.Flake, h.AttrPath = a, ref, path
	default:
		return nil, fail("say how to build it: nixos = nixos_system(...) or attr = \".#nixosConfigurations.%s\"", name)
	}
	if err := r.AddHost(th, h); err != nil {
		return nil, err
	}
	return h, nil
}
