package nixgen

import (
	"fmt"
	"strings"

	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
)

// policy is where the generated code is evaluated (see the package doc):
// "here" when flake is empty, else in the file the flake imports.
type policy struct {
	// flake is the importing flake's directory (file only): its hosts
	// use the self and inputs the flake passes in.
	flake string
	// dir is the directory of the file (file only): paths are written
	// relative to it. Empty: paths are absolute.
	dir string
	// overrides replace flake inputs by name (here only).
	overrides map[string]string
}

func (p policy) inFile() bool { return p.flake != "" }

// generator writes one expression: the flake bindings of its let, and
// the values of modules and special_args under its policy.
type generator struct {
	policy
	values   *values
	flakes   map[string]int    // flake reference -> its variable's number
	hives    map[string]string // colmena hive -> its variable (colmena.go)
	lets     strings.Builder
	warnings []string
}

func newGenerator(p policy) *generator {
	return &generator{policy: p, values: newValues(p), flakes: map[string]int{}}
}

// flake returns the Nix variables that stand for flake ref and its
// inputs. The importing flake is self and inputs'; any other flake is
// fetched once, on first use, as flakeN, and its inputs are flakeN.inputs
// or, with overrides, inputsN.
func (g *generator) flake(ref string) (self, inputs string, err error) {
	if g.inFile() && ref == g.policy.flake {
		return "self", "inputs'", nil
	}
	i, ok := g.flakes[ref]
	if !ok {
		i = len(g.flakes)
		g.flakes[ref] = i
		url, err := flakeref.URL(ref)
		if err != nil {
			return "", "", err
		}
		lit, err := nixenc.String(url)
		if err != nil {
			return "", "", err
		}
		if g.inFile() {
			g.lets.WriteString("  # Not the importing flake: fetched by reference, which pure evaluation\n")
			g.lets.WriteString("  # refuses unless the reference is locked (use --impure otherwise).\n")
		}
		fmt.Fprintf(&g.lets, "  flake%d = builtins.getFlake %s;\n", i, lit)
		if len(g.overrides) > 0 {
			inputs, err := inputsExpr(i, ref, g.overrides)
			if err != nil {
				return "", "", err
			}
			fmt.Fprintf(&g.lets, "  inputs%d = %s;\n", i, inputs)
		}
	}
	if len(g.overrides) > 0 {
		return fmt.Sprintf("flake%d", i), fmt.Sprintf("inputs%d", i), nil
	}
	return fmt.Sprintf("flake%d", i), fmt.Sprintf("flake%d.inputs", i), nil
}

// nixosSystem is how a nixos_system() host is evaluated, under either
// policy:
//
//	let inputs = ...; self = ...; lib = inputs.nixpkgs.lib; in
//	inputs.nixpkgs.lib.nixosSystem {
//	  system = "x86_64-linux";
//	  specialArgs = { inherit inputs self; } // { ... };
//	  modules = [ ... ];
//	}SELECT
//
// with the call in parentheses when select (an attribute selection such
// as ".config.system.build.toplevel") is not empty. Every line but the
// first is indented for an attribute of the top-level set.
func (g *generator) nixosSystem(h *runtime.Host, sel string) (string, error) {
	if h.NixOS.Colmena != nil {
		return g.colmenaNode(h, sel)
	}
	self, inputs, err := g.flake(h.NixOS.Flake)
	if err != nil {
		return "", fmt.Errorf("host %s: flake: %w", h.Name, err)
	}
	scope := "inputs = " + inputs + ";"
	if self != "self" { // self = self would be infinite recursion
		scope += " self = " + self + ";"
	}
	sys, err := nixenc.String(h.System)
	if err != nil {
		return "", err
	}
	mods, err := g.values.encode("modules", h.NixOS.Modules)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	special, err := g.values.encode("special_args", h.NixOS.SpecialArgs)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	const indent = "    "
	call := fmt.Sprintf("inputs.nixpkgs.lib.nixosSystem {\n%[1]s  system = %[2]s;\n%[1]s  specialArgs = { inherit inputs self; } // %[3]s;\n%[1]s  modules = %[4]s;\n%[1]s}",
		indent, sys, special, mods)
	if sel != "" {
		call = "(" + call + ")" + sel
	}
	return fmt.Sprintf("let %s lib = inputs.nixpkgs.lib; in\n%s%s", scope, indent, call), nil
}

// entry writes attribute name of the top-level set, preceded by a
// comment; an expression of several lines starts on a line of its own.
func entry(b *strings.Builder, comment, name, expr string) {
	sep := " "
	if strings.Contains(expr, "\n") {
		sep = "\n    "
	}
	fmt.Fprintf(b, "\n  # %s\n  %s =%s%s;\n", oneLine(comment), name, sep, expr)
}

// oneLine is s with its line breaks replaced, for a Nix line comment.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
