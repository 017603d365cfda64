// Package export writes fleet's inventory for other tools: a Nix file of
// nixosConfigurations that a flake can import (for nixos-anywhere,
// nixos-rebuild, nix build ...), and a JSON document.
package export

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// NixOptions configure Nix.
type NixOptions struct {
	// Flake is the directory of the flake that imports the file (absolute).
	// Hosts whose nixos_system() flake (or attr= flake) is this directory
	// are evaluated with the self and inputs the flake passes in; empty
	// means DefaultFlake(hosts, project).
	Flake string
	// Dir is the directory the file is written to (absolute): paths in
	// the file are relative to it. Empty means Flake.
	Dir string
	// Source names the fleet.star in the header comment.
	Source string
	// Name is the file name used in the header's usage example.
	Name string
}

// Result is a generated Nix file.
type Result struct {
	Text string
	// Hosts are the names of the hosts the file defines.
	Hosts []string
	// Warnings are things the user should know: hosts left out, hosts
	// that need --impure, paths outside the flake.
	Warnings []string
}

// DefaultFlake is the flake an export is for when none is given: the one
// local flake every host is built from, else project (the directory of
// fleet.star).
func DefaultFlake(hosts []*runtime.Host, project string) string {
	seen := ""
	for _, h := range hosts {
		f := hostFlake(h)
		if !filepath.IsAbs(f) {
			continue
		}
		if seen != "" && f != seen {
			return project
		}
		seen = f
	}
	if seen == "" {
		return project
	}
	return seen
}

func hostFlake(h *runtime.Host) string {
	if h.NixOS != nil {
		return h.NixOS.Flake
	}
	return h.Flake
}

// Nix generates a Nix file defining, for each of hosts, the result of
// its nixpkgs.lib.nixosSystem call - what `fleet run` builds the
// .config.system.build.toplevel of - as a function of the importing
// flake's self and inputs. all is the whole inventory, which
// inventory() values stand for.
//
// Each nixos_system() host is evaluated exactly as executor.BuildExpr
// evaluates it (see NixosSystemCall), with two differences that make the
// file work inside a flake, which evaluates in pure mode: inputs and self
// are the importing flake's (not builtins.getFlake), and path() values
// are paths relative to the file (Dir) instead of absolute ones.
func Nix(hosts, all []*runtime.Host, o NixOptions) (*Result, error) {
	if o.Flake == "" {
		return nil, fmt.Errorf("export: no flake directory")
	}
	if o.Dir == "" {
		o.Dir = o.Flake
	}
	if o.Name == "" {
		o.Name = "fleet-export.nix"
	}
	res := &Result{}
	importPath := "./" + o.Name
	if r, err := filepath.Rel(o.Flake, filepath.Join(o.Dir, o.Name)); err == nil {
		importPath = filepath.ToSlash(r)
		if !strings.HasPrefix(importPath, "../") {
			importPath = "./" + importPath
		} else {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s is outside the flake %s: write it inside (a flake can only import its own files)", filepath.Join(o.Dir, o.Name), o.Flake))
		}
	}
	rw := &rewriter{dir: o.Dir, flake: o.Flake, all: all, hosts: map[*runtime.Host]*runtime.Host{}, warned: map[string]bool{}}

	var (
		lets   strings.Builder
		body   strings.Builder
		flakes = map[string]string{} // other flakes' refs -> variable
	)
	otherFlake := func(ref string) (string, error) {
		if v, ok := flakes[ref]; ok {
			return v, nil
		}
		v := fmt.Sprintf("flake%d", len(flakes))
		flakes[ref] = v
		url := ref
		if filepath.IsAbs(ref) {
			url = "path:" + ref
		}
		lit, err := nixenc.String(url)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&lets, "  # Not the importing flake: fetched by reference, which pure evaluation\n")
		fmt.Fprintf(&lets, "  # refuses unless the reference is locked (use --impure otherwise).\n")
		fmt.Fprintf(&lets, "  %s = builtins.getFlake %s;\n", v, lit)
		return v, nil
	}
	for _, h := range hosts {
		name, err := nixenc.AttrName(h.Name)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		switch {
		case h.NixOS != nil:
			scope := "inputs = inputs';"
			if h.NixOS.Flake != o.Flake {
				v, err := otherFlake(h.NixOS.Flake)
				if err != nil {
					return nil, fmt.Errorf("host %s: flake: %w", h.Name, err)
				}
				scope = fmt.Sprintf("inputs = %s.inputs; self = %s;", v, v)
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: its flake %s is not the exported flake %s: the file reads it with builtins.getFlake, which needs --impure", h.Name, h.NixOS.FlakeShown, o.Flake))
			}
			call, err := NixosSystemCall(h, "    ", rw.encode)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&body, "\n  # %s: %s\n", h.Name, h.BuildDescription())
			fmt.Fprintf(&body, "  %s =\n    let %s lib = inputs.nixpkgs.lib; in\n    %s;\n", name, scope, call)
			res.Hosts = append(res.Hosts, h.Name)
		case h.FlakeAttr != "":
			parts := strings.Split(h.AttrPath, ".")
			if len(parts) != 2 || parts[0] != "nixosConfigurations" {
				fmt.Fprintf(&body, "\n  # %s: left out: attr = %q is not a nixosConfigurations entry.\n", h.Name, h.FlakeAttr)
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: left out: attr %q is not a nixosConfigurations entry, so there is no nixosSystem to export", h.Name, h.FlakeAttr))
				continue
			}
			sel, err := nixenc.AttrName(parts[1])
			if err != nil {
				return nil, fmt.Errorf("host %s: attr: %w", h.Name, err)
			}
			if h.Flake == o.Flake {
				if parts[1] == h.Name {
					res.Warnings = append(res.Warnings, fmt.Sprintf("%s: left out: it is the flake's own nixosConfigurations.%s; merge the flake's entries with the file's (see its comment)", h.Name, parts[1]))
					fmt.Fprintf(&body, "\n  # %s: left out: it is the flake's own nixosConfigurations.%s (attr = %q);\n  # merge: nixosConfigurations = { %s = ...; } // import %s { inherit inputs self; };\n",
						h.Name, parts[1], h.FlakeAttr, name, importPath)
					continue
				}
				fmt.Fprintf(&body, "\n  # %s: attr = %q\n  %s = self.nixosConfigurations.%s;\n", h.Name, h.FlakeAttr, name, sel)
			} else {
				v, err := otherFlake(h.Flake)
				if err != nil {
					return nil, fmt.Errorf("host %s: flake: %w", h.Name, err)
				}
				res.Warnings = append(res.Warnings, fmt.Sprintf("%s: attr %q is not of the exported flake %s: the file reads it with builtins.getFlake, which needs --impure", h.Name, h.FlakeAttr, o.Flake))
				fmt.Fprintf(&body, "\n  # %s: attr = %q\n  %s = %s.nixosConfigurations.%s;\n", h.Name, h.FlakeAttr, name, v, sel)
			}
			res.Hosts = append(res.Hosts, h.Name)
		default:
			return nil, fmt.Errorf("host %s: nothing to build", h.Name)
		}
	}
	res.Warnings = append(res.Warnings, rw.warnings...)

	var b strings.Builder
	header(&b, o, res, importPath)
	b.WriteString("{ self, inputs ? self.inputs, ... }:\nlet\n")
	b.WriteString("  # fleet passes a flake's inputs without self, as builtins.getFlake has them.\n")
	b.WriteString("  inputs' = builtins.removeAttrs inputs [ \"self\" ];\n")
	if rw.inventory != "" {
		b.WriteString("  # inventory(): every host of fleet.star.\n")
		fmt.Fprintf(&b, "  fleetInventory = let inputs = inputs'; lib = inputs.nixpkgs.lib; in %s;\n", rw.inventory)
	}
	b.WriteString(lets.String())
	b.WriteString("in\n{")
	b.WriteString(body.String())
	b.WriteString("}\n")
	res.Text = b.String()
	return res, nil
}

func header(b *strings.Builder, o NixOptions, res *Result, rel string) {
	src := o.Source
	if src == "" {
		src = "fleet.star"
	}
	fmt.Fprintf(b, `# Generated by `+"`fleet export nix`"+` from %s: do not edit, export again
# after changing it. NixOS configurations of %d hosts:
%s# each the nixpkgs.lib.nixosSystem call that `+"`fleet run`"+` builds the
# toplevel of: same modules, same special_args, same inputs.
#
# Use it from the flake's outputs:
#
#   outputs = { self, nixpkgs, ... }@inputs: {
#     nixosConfigurations = import %s { inherit inputs self; };
#   };
#
# (inputs defaults to self.inputs), then e.g.
#   nix build .#nixosConfigurations.NAME.config.system.build.toplevel
#   nixos-anywhere --flake .#NAME root@ADDRESS
# Evaluate with --override-input NAME FLAKE where `+"`fleet run`"+` had
# --override-input NAME=FLAKE.
#
# path() modules are paths relative to this file, which must stay where it
# was written, inside the flake: a flake is evaluated in pure mode from its
# store copy, where absolute paths of the checkout cannot be read. In a git
# repository, git add this file (flakes see tracked files only).
`, src, len(res.Hosts), wrap(res.Hosts, "#   ", 76), rel)
}

// NixosSystemCall renders how fleet evaluates a nixos_system() host:
//
//	inputs.nixpkgs.lib.nixosSystem {
//	  system = "x86_64-linux";
//	  specialArgs = { inherit inputs self; } // { ... };
//	  modules = [ ... ];
//	}
//
// with inputs, self and lib free (nix_expr code sees them). encode
// renders the modules and special_args values (nixenc.EncodeNamed for
// executor.BuildExpr). indent prefixes every line but the first.
func NixosSystemCall(h *runtime.Host, indent string, encode func(name string, v starlark.Value) (string, error)) (string, error) {
	if h.NixOS == nil {
		return "", fmt.Errorf("host %s: not a nixos_system() host", h.Name)
	}
	sys, err := nixenc.String(h.System)
	if err != nil {
		return "", err
	}
	mods, err := encode("modules", h.NixOS.Modules)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	special, err := encode("special_args", h.NixOS.SpecialArgs)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	return fmt.Sprintf("inputs.nixpkgs.lib.nixosSystem {\n%[1]s  system = %[2]s;\n%[1]s  specialArgs = { inherit inputs self; } // %[3]s;\n%[1]s  modules = %[4]s;\n%[1]s}",
		indent, sys, special, mods), nil
}

// rewriter encodes values with path() values made relative to dir.
type rewriter struct {
	dir, flake string
	all        []*runtime.Host
	hosts      map[*runtime.Host]*runtime.Host // rewritten copies; nil value: unchanged
	warned     map[string]bool
	warnings   []string
	inventory  string // the encoded inventory, once an inventory() was seen
}

func (r *rewriter) encode(name string, v starlark.Value) (string, error) {
	v2, _, err := r.value(v, 0)
	if err != nil {
		return "", err
	}
	return nixenc.EncodeNamed(name, v2)
}

// value returns v with every path() inside replaced by a relative path,
// and whether anything changed. Values without paths are returned as
// they are, so they encode exactly as fleet encodes them.
func (r *rewriter) value(v starlark.Value, depth int) (starlark.Value, bool, error) {
	if depth > nixenc.MaxDepth {
		return v, false, nil // nixenc reports it
	}
	switch v := v.(type) {
	case *runtime.Path:
		rel, err := r.rel(v)
		if err != nil {
			return nil, false, err
		}
		return rel, true, nil
	case *runtime.Host:
		c, err := r.host(v)
		if err != nil || c == nil {
			return v, false, err
		}
		return c, true, nil
	case *runtime.Inventory:
		// Written once, as fleetInventory, rather than in every host.
		if r.inventory == "" {
			inv := starlark.Value(v)
			changed := false
			hosts := make([]*runtime.Host, len(r.all))
			for i, h := range r.all {
				c, err := r.host(h)
				if err != nil {
					return nil, false, err
				}
				hosts[i] = h
				if c != nil {
					hosts[i], changed = c, true
				}
			}
			if changed {
				inv = inventory(hosts)
			}
			expr, err := nixenc.EncodeNamed("inventory()", inv)
			if err != nil {
				return nil, false, err
			}
			r.inventory = expr
		}
		return &nixRef{name: "fleetInventory", shown: "inventory()"}, true, nil
	case *starlark.List:
		elems := make([]starlark.Value, v.Len())
		changed := false
		for i := range elems {
			e, c, err := r.value(v.Index(i), depth+1)
			if err != nil {
				return nil, false, err
			}
			elems[i], changed = e, changed || c
		}
		if !changed {
			return v, false, nil
		}
		return starlark.NewList(elems), true, nil
	case starlark.Tuple:
		elems := make(starlark.Tuple, len(v))
		changed := false
		for i := range v {
			e, c, err := r.value(v[i], depth+1)
			if err != nil {
				return nil, false, err
			}
			elems[i], changed = e, changed || c
		}
		if !changed {
			return v, false, nil
		}
		return elems, true, nil
	case *starlark.Dict:
		d := starlark.NewDict(v.Len())
		changed := false
		for _, kv := range v.Items() {
			e, c, err := r.value(kv[1], depth+1)
			if err != nil {
				return nil, false, err
			}
			changed = changed || c
			if err := d.SetKey(kv[0], e); err != nil {
				return nil, false, err
			}
		}
		if !changed {
			return v, false, nil
		}
		return d, true, nil
	case *starlarkstruct.Struct:
		fields := starlark.StringDict{}
		changed := false
		for name, f := range v.Entries() {
			e, c, err := r.value(f, depth+1)
			if err != nil {
				return nil, false, err
			}
			fields[name], changed = e, changed || c
		}
		if !changed {
			return v, false, nil
		}
		return starlarkstruct.FromStringDict(v.Constructor(), fields), true, nil
	}
	return v, false, nil
}

// host returns a copy of h with paths in its vars made relative, or nil
// when its vars hold no path.
func (r *rewriter) host(h *runtime.Host) (*runtime.Host, error) {
	if c, ok := r.hosts[h]; ok {
		return c, nil
	}
	r.hosts[h] = nil // a host reachable from its own vars: leave it
	if h.Vars == nil {
		return nil, nil
	}
	vars, changed, err := r.value(h.Vars, 1)
	if err != nil || !changed {
		return nil, err
	}
	c := *h
	c.Vars = vars.(*starlark.Dict)
	r.hosts[h] = &c
	return &c, nil
}

var safeRel = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)

func (r *rewriter) rel(p *runtime.Path) (starlark.Value, error) {
	rel, err := filepath.Rel(r.dir, p.Abs)
	if err != nil {
		return nil, fmt.Errorf("path %s: %w", p.Abs, err)
	}
	rel = filepath.ToSlash(rel)
	if inFlake, err := filepath.Rel(r.flake, p.Abs); err != nil || inFlake == ".." || strings.HasPrefix(inFlake, "../") {
		if !r.warned[p.Abs] {
			r.warned[p.Abs] = true
			r.warnings = append(r.warnings, fmt.Sprintf("%s is outside the flake %s: a flake cannot read it in pure evaluation", p.Abs, r.flake))
		}
	}
	var expr string
	switch {
	case rel == ".":
		expr = "./."
	case rel == "..":
		expr = "./.."
	case safeRel.MatchString(rel) && strings.HasPrefix(rel, "../"):
		expr = rel // a path literal as it is
	case safeRel.MatchString(rel):
		expr = "./" + rel
	default:
		s, err := nixenc.String("/" + rel)
		if err != nil {
			return nil, err
		}
		expr = "./. + " + s
	}
	return &relPath{p: p, expr: expr}, nil
}

// relPath is a path() as a path relative to the exported file.
type relPath struct {
	p    *runtime.Path
	expr string
}

func (p *relPath) String() string           { return p.p.String() }
func (p *relPath) Type() string             { return "path" }
func (p *relPath) Freeze()                  {}
func (p *relPath) Truth() starlark.Bool     { return starlark.True }
func (p *relPath) Hash() (uint32, error)    { return p.p.Hash() }
func (p *relPath) NixExpr() (string, error) { return p.expr, nil }

// nixRef is a variable of the generated file.
type nixRef struct{ name, shown string }

func (n *nixRef) String() string           { return n.shown }
func (n *nixRef) Type() string             { return "nix_ref" }
func (n *nixRef) Freeze()                  {}
func (n *nixRef) Truth() starlark.Bool     { return starlark.True }
func (n *nixRef) Hash() (uint32, error)    { return starlark.String(n.name).Hash() }
func (n *nixRef) NixExpr() (string, error) { return n.name, nil }

// inventory is inventory() over rewritten hosts, encoded as
// runtime.Inventory encodes: { NAME = <host>; ... }.
type inventory []*runtime.Host

func (i inventory) String() string           { return "inventory()" }
func (i inventory) Type() string             { return "inventory" }
func (i inventory) Freeze()                  {}
func (i inventory) Truth() starlark.Bool     { return starlark.True }
func (i inventory) Hash() (uint32, error)    { return 0, nil }
func (i inventory) NixExpr() (string, error) { return runtime.HostsExpr(i) }

// WriteFile writes data to file atomically (a temporary file in the same
// directory, renamed into place), creating the directory if needed.
func WriteFile(file string, data []byte) error {
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), file)
}

// sortedKeys returns the string keys of d, sorted.
func sortedKeys(d *starlark.Dict) []string {
	var keys []string
	for _, k := range d.Keys() {
		if s, ok := k.(starlark.String); ok {
			keys = append(keys, string(s))
		} else {
			keys = append(keys, k.String())
		}
	}
	sort.Strings(keys)
	return keys
}

// wrap lists words, comma-separated, on lines of at most width bytes
// that begin with prefix.
func wrap(words []string, prefix string, width int) string {
	var b strings.Builder
	line := prefix
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		if line != prefix && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = prefix
		}
		if line != prefix {
			line += " "
		}
		line += w
	}
	if line != prefix {
		b.WriteString(line + "\n")
	}
	return b.String()
}
