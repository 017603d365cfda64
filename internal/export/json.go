package export

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/fleet-deploy/fleet/runtime"
	starlarkjson "go.starlark.net/lib/json"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Inventory is `fleet export json`: the inventory for other tools.
type Inventory struct {
	// Version is the format's version; fields are only ever added.
	Version int    `json:"version"`
	Hosts   []Host `json:"hosts"`
}

// Host is one host of Inventory.
type Host struct {
	Name          string   `json:"name"`
	System        string   `json:"system"`
	Deployable    bool     `json:"deployable"`
	Target        *string  `json:"target"`      // "user@host:port", null when not deployable
	TargetHost    *string  `json:"target_host"` // null when not deployable
	TargetUser    string   `json:"target_user"`
	TargetPort    int      `json:"target_port"`
	AllowLocal    bool     `json:"allow_local"`
	BuildOnTarget bool     `json:"build_on_target"`
	Tags          []string `json:"tags"`
	// Vars as Starlark's json.encode writes them; fleet's own values
	// become plain data: a path its absolute path, a host its name,
	// nix_expr(c) {"nix_expr": c}, inventory() the list of host names.
	Vars  json.RawMessage `json:"vars"`
	Build Build           `json:"build"`
}

// Build says how a host's system is built.
type Build struct {
	// Kind is "nixos_system", "attr" or "colmena_node".
	Kind string `json:"kind"`
	// Summary is the one-line description plans show.
	Summary string `json:"summary"`
	// Flake is the flake, resolved: an absolute directory or a reference.
	Flake string `json:"flake"`
	// Attr and AttrPath (kind "attr"): as written, and after '#'.
	Attr     string `json:"attr,omitempty"`
	AttrPath string `json:"attr_path,omitempty"`
	// Modules (kind "nixos_system"): {"path": ABS}, {"nix_expr": CODE}
	// or {"inline": VALUE} each.
	Modules *[]json.RawMessage `json:"modules,omitempty"`
	// SpecialArgs are the names of the special_args, sorted.
	SpecialArgs *[]string `json:"special_args,omitempty"`
	// Node (kind "colmena_node") is the node of the colmena hive of
	// Flake, or of the non-flake hive file Hive ("" for a flake's).
	Node string `json:"node,omitempty"`
	Hive string `json:"hive,omitempty"`
}

// JSON describes hosts; all is the whole inventory, which inventory()
// values stand for.
func JSON(hosts, all []*runtime.Host) (*Inventory, error) {
	inv := &Inventory{Version: 1, Hosts: []Host{}}
	names := make([]starlark.Value, len(all))
	for i, h := range all {
		names[i] = starlark.String(h.Name)
	}
	p := plainer{inventory: starlark.Tuple(names)}
	encodeJSON := p.encode
	for _, h := range hosts {
		j := Host{
			Name: h.Name, System: h.System, Deployable: h.Deployable(),
			TargetUser: h.User(), TargetPort: h.Port(),
			AllowLocal: h.AllowLocal, BuildOnTarget: h.BuildOnTarget,
			Tags: append([]string{}, h.Tags...),
		}
		if h.Deployable() {
			t, th := h.Target(), h.TargetHost
			j.Target, j.TargetHost = &t, &th
		}
		vars := starlark.Value(starlark.NewDict(0))
		if h.Vars != nil {
			vars = h.Vars
		}
		var err error
		if j.Vars, err = encodeJSON(vars); err != nil {
			return nil, fmt.Errorf("host %s: vars: %w", h.Name, err)
		}
		j.Build.Summary = h.BuildDescription()
		switch {
		case h.NixOS != nil && h.NixOS.Colmena != nil:
			j.Build.Kind = "colmena_node"
			j.Build.Flake = h.NixOS.Flake
			j.Build.Node = h.NixOS.Colmena.Node
			j.Build.Hive = h.NixOS.Colmena.File
		case h.NixOS != nil:
			j.Build.Kind = "nixos_system"
			j.Build.Flake = h.NixOS.Flake
			mods := []json.RawMessage{}
			for i := 0; i < h.NixOS.Modules.Len(); i++ {
				var m starlark.Value
				switch v := h.NixOS.Modules.Index(i).(type) {
				case *runtime.Path:
					m = dict("path", starlark.String(v.Abs))
				case *runtime.NixExpr:
					m = dict("nix_expr", starlark.String(v.Code))
				default:
					m = dict("inline", v)
				}
				raw, err := encodeJSON(m)
				if err != nil {
					return nil, fmt.Errorf("host %s: modules[%d]: %w", h.Name, i, err)
				}
				mods = append(mods, raw)
			}
			args := sortedKeys(h.NixOS.SpecialArgs)
			if args == nil {
				args = []string{}
			}
			j.Build.Modules, j.Build.SpecialArgs = &mods, &args
		case h.FlakeAttr != "":
			j.Build.Kind = "attr"
			j.Build.Flake = h.Flake
			j.Build.Attr = h.FlakeAttr
			j.Build.AttrPath = h.AttrPath
		}
		inv.Hosts = append(inv.Hosts, j)
	}
	return inv, nil
}

func dict(k string, v starlark.Value) *starlark.Dict {
	d := starlark.NewDict(1)
	d.SetKey(starlark.String(k), v)
	return d
}

// plainer turns fleet's own values into plain data.
type plainer struct{ inventory starlark.Tuple }

// encode encodes v with Starlark's json.encode, fleet's own values
// turned into plain data first.
func (p plainer) encode(v starlark.Value) (json.RawMessage, error) {
	plain, err := p.value(v, 0)
	if err != nil {
		return nil, err
	}
	th := &starlark.Thread{Name: "export json"}
	out, err := starlark.Call(th, starlarkjson.Module.Members["encode"], starlark.Tuple{plain}, nil)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(string(out.(starlark.String))), nil
}

const maxDepth = 100

func (p plainer) value(v starlark.Value, depth int) (starlark.Value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested more than %d levels deep (or cyclic)", maxDepth)
	}
	switch v := v.(type) {
	case *runtime.Path:
		return starlark.String(v.Abs), nil
	case *runtime.Host:
		return starlark.String(v.Name), nil
	case *runtime.NixExpr:
		return dict("nix_expr", starlark.String(v.Code)), nil
	case *runtime.NixosSystem:
		return starlark.String(v.String()), nil
	case *runtime.Inventory:
		return p.inventory, nil
	case *starlark.List:
		elems := make([]starlark.Value, v.Len())
		for i := range elems {
			e, err := p.value(v.Index(i), depth+1)
			if err != nil {
				return nil, err
			}
			elems[i] = e
		}
		return starlark.NewList(elems), nil
	case starlark.Tuple:
		elems := make([]starlark.Value, len(v))
		for i := range v {
			e, err := p.value(v[i], depth+1)
			if err != nil {
				return nil, err
			}
			elems[i] = e
		}
		return starlark.NewList(elems), nil
	case *starlark.Dict:
		d := starlark.NewDict(v.Len())
		for _, kv := range v.Items() {
			e, err := p.value(kv[1], depth+1)
			if err != nil {
				return nil, err
			}
			d.SetKey(kv[0], e)
		}
		return d, nil
	case *starlarkstruct.Struct:
		d := starlark.NewDict(v.Len())
		for name, f := range v.Entries() {
			e, err := p.value(f, depth+1)
			if err != nil {
				return nil, err
			}
			d.SetKey(starlark.String(name), e)
		}
		return d, nil
	}
	return v, nil
}

// sortedKeys returns the keys of d, sorted.
func sortedKeys(d *starlark.Dict) []string {
	keys := runtime.DictKeys(d)
	sort.Strings(keys)
	return keys
}
