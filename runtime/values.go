package runtime

import (
	"fmt"
	"strings"

	"go.starlark.net/starlark"
)

// Path is a local file or directory referenced from fleet.star, resolved
// against the directory of the file that named it (not the working
// directory), so a factory in a loaded file means its own neighbours.
type Path struct {
	Abs     string // absolute, cleaned
	Written string // as the script wrote it, for messages and plans
}

func (p *Path) String() string        { return fmt.Sprintf("path(%q)", p.Written) }
func (p *Path) Type() string          { return "path" }
func (p *Path) Freeze()               {}
func (p *Path) Truth() starlark.Bool  { return starlark.True }
func (p *Path) Hash() (uint32, error) { return starlark.String(p.Abs).Hash() }

// NixExpr is a fragment of Nix code, spliced verbatim into the generated
// expression (for example "inputs.sops-nix.nixosModules.sops"). It is
// evaluated where `inputs` (the flake's inputs) and `self` are in scope.
type NixExpr struct {
	Code string
}

func (e *NixExpr) String() string        { return fmt.Sprintf("nix_expr(%q)", e.Code) }
func (e *NixExpr) Type() string          { return "nix_expr" }
func (e *NixExpr) Freeze()               {}
func (e *NixExpr) Truth() starlark.Bool  { return starlark.True }
func (e *NixExpr) Hash() (uint32, error) { return starlark.String(e.Code).Hash() }

// NixosSystem describes a NixOS configuration that fleet evaluates as
// inputs.nixpkgs.lib.nixosSystem of Flake, like the seed's mkSystem does.
type NixosSystem struct {
	Flake       string         // absolute path for local flakes, else a flake reference
	FlakeShown  string         // as written
	Modules     *starlark.List // frozen; elements are *Path, *NixExpr or dicts
	SpecialArgs *starlark.Dict // frozen
	// Colmena, when set, makes this a node of a colmena hive, built as
	// colmena builds it (internal/colmena); Modules and SpecialArgs are
	// empty then.
	Colmena *ColmenaNode
}

// ColmenaNode is node Node of the colmena hive of the system's flake, or
// of the non-flake hive file File (absolute; Flake is "" then).
type ColmenaNode struct {
	Node, File string
	// Note says what fleet does differently from colmena for this node
	// (why it is not deployable, settings not carried over); fleet
	// hosts shows it.
	Note string
}

func (n *NixosSystem) String() string {
	if c := n.Colmena; c != nil {
		if c.File != "" {
			return fmt.Sprintf("colmena_node(%q, hive=%q)", c.Node, c.File)
		}
		return fmt.Sprintf("colmena_node(%q, flake=%q)", c.Node, n.FlakeShown)
	}
	return fmt.Sprintf("nixos_system(flake=%q, modules=%d, special_args=[%s])",
		n.FlakeShown, n.Modules.Len(), strings.Join(DictKeys(n.SpecialArgs), ", "))
}
func (n *NixosSystem) Type() string         { return "nixos_system" }
func (n *NixosSystem) Freeze()              {}
func (n *NixosSystem) Truth() starlark.Bool { return starlark.True }
func (n *NixosSystem) Hash() (uint32, error) {
	return 0, fmt.Errorf("unhashable type: nixos_system")
}

// Attr exposes the parts of the configuration to scripts.
func (n *NixosSystem) Attr(name string) (starlark.Value, error) {
	switch name {
	case "flake":
		return starlark.String(n.FlakeShown), nil
	case "modules":
		return n.Modules, nil
	case "special_args":
		return n.SpecialArgs, nil
	}
	return nil, nil
}

// AttrNames lists the readable fields.
func (n *NixosSystem) AttrNames() []string { return []string{"flake", "modules", "special_args"} }

// DictKeys are the keys of d as text, in the dict's order: strings as
// they are, other keys as Starlark prints them.
func DictKeys(d *starlark.Dict) []string {
	var keys []string
	for _, k := range d.Keys() {
		if s, ok := k.(starlark.String); ok {
			keys = append(keys, string(s))
		} else {
			keys = append(keys, k.String())
		}
	}
	return keys
}
