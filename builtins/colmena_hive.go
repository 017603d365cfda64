package builtins

import (
	"fmt"

	"github.com/fleet-deploy/fleet/internal/colmena"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

const colmenaHiveDoc = `colmena_hive(flake=".", hive=None)

Declares every node of a colmena hive as a host and returns them, so a
colmena user deploys the hive as it is. The hive is the flake's
colmenaHive output (colmena.lib.makeHive) or its colmena output, or with
hive = "./hive.nix" a non-flake hive. Each node's system is built as
colmena build builds it, less colmena's key units (see colmena_node), and
its config.deployment,
evaluated whole when fleet loads this file, becomes the host's settings:
targetHost target_host (null: not deployable; "user@host": target_user
too), targetUser target_user (null: unset), targetPort target_port (null:
unset), allowLocalDeployment allow_local, buildOnTarget build_on_target,
tags tags, keys keys (secret(...) of their text, keyFile or keyCommand).
What fleet does differently (targetHost null, sshOptions, a
privilegeEscalationCommand other than sudo, ...) is the host's note,
which fleet hosts shows. docs/from-colmena.md is the switching guide.`

const colmenaNodeDoc = `colmena_node(node, flake=".", hive=None, note=None)

The system of node of a colmena hive (as in colmena_hive), for host(nixos
= ...): its modules and the hive's defaults evaluated by the node's
nixpkgs (meta.nixpkgs, meta.nodeNixpkgs) with colmena's deployment
options, and specialArgs name, nodes, meta.specialArgs and
meta.nodeSpecialArgs, as colmena build does; only colmena's NAME-key
units and key-ownership activation snippet are left out, as fleet
uploads keys itself (secret()). Nothing is evaluated
when fleet loads the file. note says what fleet does differently from
colmena for this node; fleet hosts shows it.`

var colmenaHiveFn = colmenaHiveWith(nil)

// WithOverrides makes colmena_hive of universe u (from Universe) read
// hives with the flake inputs overrides replaced, as --override-input
// replaces them in the build: a command that builds with overrides
// loads fleet.star with them.
func WithOverrides(u starlark.StringDict, overrides map[string]string) {
	if len(overrides) > 0 {
		u["colmena_hive"] = starlark.NewBuiltin("colmena_hive", colmenaHiveWith(overrides))
	}
}

func colmenaHiveWith(overrides map[string]string) func(*starlark.Thread, *starlark.Builtin, starlark.Tuple, []starlark.Tuple) (starlark.Value, error) {
	return func(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
		return colmenaHive(th, b, args, kwargs, overrides)
	}
}

func colmenaHive(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple, overrides map[string]string) (starlark.Value, error) {
	var flake, hive starlark.Value = starlark.None, starlark.None
	if err := starlark.UnpackArgs("colmena_hive", args, kwargs, "flake?", &flake, "hive?", &hive); err != nil {
		return nil, err
	}
	r, err := runOf(th, "colmena_hive")
	if err != nil {
		return nil, err
	}
	src, err := colmenaSource(r, th, "colmena_hive", flake, hive)
	if err != nil {
		return nil, err
	}
	h, err := colmena.Read(r.Context(), colmena.Source{Flake: src.Flake, File: src.Colmena.File, Overrides: overrides})
	if err != nil {
		return nil, fmt.Errorf("colmena_hive(): %w", err)
	}
	hosts := starlark.NewList(nil)
	for _, n := range h.Nodes {
		s, err := n.Map()
		if err != nil {
			return nil, fmt.Errorf("colmena_hive(): %w", err)
		}
		host, err := colmenaHost(th, b, src, s)
		if err != nil {
			return nil, fmt.Errorf("colmena_hive(): node %s: %w", n.Name, err)
		}
		hosts.Append(host)
	}
	return hosts, nil
}

// colmenaHost declares the host of one node through host() and secret(),
// so that it is checked as any other.
func colmenaHost(th *starlark.Thread, b *starlark.Builtin, src *runtime.NixosSystem, s *colmena.Settings) (starlark.Value, error) {
	str := func(p *string) starlark.Value {
		if p == nil {
			return starlark.None
		}
		return starlark.String(*p)
	}
	port := starlark.Value(starlark.None)
	if s.TargetPort != nil {
		port = starlark.MakeInt(*s.TargetPort)
	}
	tags := make([]starlark.Value, len(s.Tags))
	for i, t := range s.Tags {
		tags[i] = starlark.String(t)
	}
	var keys []starlark.Value
	for _, k := range s.Keys {
		kw := []starlark.Tuple{{starlark.String("dest"), starlark.String(k.Dest())}}
		switch {
		case k.Text != nil:
			kw = append(kw, starlark.Tuple{starlark.String("text"), starlark.String(*k.Text)})
		case k.KeyFile != nil:
			kw = append(kw, starlark.Tuple{starlark.String("file"), starlark.String(*k.KeyFile)})
		default:
			words := make([]starlark.Value, len(k.KeyCommand))
			for i, w := range k.KeyCommand {
				words[i] = starlark.String(w)
			}
			kw = append(kw, starlark.Tuple{starlark.String("command"), starlark.NewList(words)})
		}
		kw = append(kw,
			starlark.Tuple{starlark.String("owner"), starlark.String(k.User)},
			starlark.Tuple{starlark.String("group"), starlark.String(k.Group)},
			starlark.Tuple{starlark.String("mode"), starlark.String(k.Permissions)},
			starlark.Tuple{starlark.String("upload"), starlark.String(k.UploadAt)})
		key, err := secretFn(th, b, nil, kw)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	sys := *src
	sys.Colmena = &runtime.ColmenaNode{Node: s.Name, File: src.Colmena.File, Note: s.Note()}
	return hostFn(th, b, nil, []starlark.Tuple{
		{starlark.String("name"), starlark.String(s.Name)},
		{starlark.String("system"), starlark.String(s.System)},
		{starlark.String("target_host"), str(s.TargetHost)},
		{starlark.String("target_user"), str(s.TargetUser)},
		{starlark.String("target_port"), port},
		{starlark.String("allow_local"), starlark.Bool(s.AllowLocal)},
		{starlark.String("build_on_target"), starlark.Bool(s.BuildOnTarget)},
		{starlark.String("tags"), starlark.NewList(tags)},
		{starlark.String("keys"), starlark.NewList(keys)},
		{starlark.String("nixos"), &sys},
	})
}

func colmenaNodeFn(th *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	var node string
	var flake, hive, note starlark.Value = starlark.None, starlark.None, starlark.None
	if err := starlark.UnpackArgs("colmena_node", args, kwargs, "node", &node, "flake?", &flake, "hive?", &hive, "note?", &note); err != nil {
		return nil, err
	}
	r, err := runOf(th, "colmena_node")
	if err != nil {
		return nil, err
	}
	sys, err := colmenaSource(r, th, "colmena_node", flake, hive)
	if err != nil {
		return nil, err
	}
	sys.Colmena.Node = node
	if note != starlark.None {
		s, ok := starlark.AsString(note)
		if !ok {
			return nil, fmt.Errorf("colmena_node(): note must be a string or None, got %s", note.Type())
		}
		sys.Colmena.Note = s
	}
	return sys, nil
}

// colmenaSource is the system of a node of the hive named by flake or
// hive, its Node still to fill in.
func colmenaSource(r *runtime.Run, th *starlark.Thread, fn string, flake, hive starlark.Value) (*runtime.NixosSystem, error) {
	mods := starlark.NewList(nil)
	mods.Freeze()
	special := starlark.NewDict(0)
	special.Freeze()
	sys := &runtime.NixosSystem{Modules: mods, SpecialArgs: special, Colmena: &runtime.ColmenaNode{}}
	if hive != starlark.None && flake != starlark.None {
		return nil, fmt.Errorf("%s(): give flake or hive, not both", fn)
	}
	if flake == starlark.None {
		flake = starlark.String(".")
	}
	if hive != starlark.None {
		file, ok := starlark.AsString(hive)
		if !ok || file == "" {
			return nil, fmt.Errorf("%s(): hive must be the path of a hive.nix, got %s", fn, hive)
		}
		sys.Colmena.File = r.Resolve(th, file)
		return sys, nil
	}
	f, ok := starlark.AsString(flake)
	if !ok {
		return nil, fmt.Errorf("%s(): flake must be a string, got %s", fn, flake.Type())
	}
	ref, err := flakeRef(r, th, f)
	if err != nil {
		return nil, fmt.Errorf("%s(): flake: %v", fn, err)
	}
	sys.Flake, sys.FlakeShown = ref, f
	return sys, nil
}
