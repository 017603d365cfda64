package nixgen

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
)

// FileOptions say where the file goes.
type FileOptions struct {
	// Flake is the directory of the flake that imports the file
	// (absolute). Hosts whose nixos_system() flake (or attr= flake) is
	// this directory are evaluated with the self and inputs the flake
	// passes in.
	Flake string
	// Dir is the directory the file is written to (absolute): paths in
	// the file are relative to it. Empty means Flake.
	Dir string
	// Name is the file's name. Empty means fleet-export.nix.
	Name string
}

// A File is the generated file.
type File struct {
	// Text is the Nix function { self, inputs ? self.inputs, ... }: { NAME = ...; }.
	Text string
	// Import is the file as the flake imports it: ./NAME, ./nix/NAME.
	Import string
	// Hosts are the names of the hosts the file defines.
	Hosts []string
	// Warnings are things the user should know: hosts left out, hosts
	// that need --impure, paths outside the flake.
	Warnings []string
}

// Export generates the file that gives a flake, for each of hosts, the
// result of its nixpkgs.lib.nixosSystem call (what Build builds the
// toplevel of), as a function of the importing flake's self and inputs.
// attr= hosts of a nixosConfigurations entry are that entry; other attr=
// hosts are left out, with a warning.
func Export(hosts []*runtime.Host, o FileOptions) (*File, error) {
	if o.Flake == "" {
		return nil, fmt.Errorf("export: no flake directory")
	}
	if o.Dir == "" {
		o.Dir = o.Flake
	}
	if o.Name == "" {
		o.Name = "fleet-export.nix"
	}
	g := newGenerator(policy{flake: o.Flake, dir: o.Dir})
	f := &File{Import: "./" + o.Name}
	if r, err := filepath.Rel(o.Flake, filepath.Join(o.Dir, o.Name)); err == nil {
		f.Import = filepath.ToSlash(r)
		if !strings.HasPrefix(f.Import, "../") {
			f.Import = "./" + f.Import
		} else {
			f.Warnings = append(f.Warnings, fmt.Sprintf("%s is outside the flake %s: write it inside (a flake can only import its own files)", filepath.Join(o.Dir, o.Name), o.Flake))
		}
	}
	var body strings.Builder
	for _, h := range hosts {
		name, err := nixenc.AttrName(h.Name)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		switch {
		case h.NixOS != nil:
			sys, err := g.nixosSystem(h, "")
			if err != nil {
				return nil, err
			}
			if h.NixOS.Flake != o.Flake {
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s: its flake %s is not the exported flake %s: the file reads it with builtins.getFlake, which needs --impure", h.Name, h.NixOS.FlakeShown, o.Flake))
			}
			entry(&body, h.Name+": "+h.BuildDescription(), name, sys)
		case h.FlakeAttr != "":
			parts := strings.Split(h.AttrPath, ".")
			if len(parts) != 2 || parts[0] != "nixosConfigurations" {
				fmt.Fprintf(&body, "\n  # %s: left out: attr = %q is not a nixosConfigurations entry.\n", oneLine(h.Name), h.FlakeAttr)
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s: left out: attr %q is not a nixosConfigurations entry, so there is no nixosSystem to export", h.Name, h.FlakeAttr))
				continue
			}
			sel, err := nixenc.AttrName(parts[1])
			if err != nil {
				return nil, fmt.Errorf("host %s: attr: %w", h.Name, err)
			}
			if h.Flake == o.Flake && parts[1] == h.Name {
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s: left out: it is the flake's own nixosConfigurations.%s; merge the flake's entries with the file's (see its comment)", h.Name, parts[1]))
				fmt.Fprintf(&body, "\n  # %s: left out: it is the flake's own nixosConfigurations.%s (attr = %q);\n  # merge: nixosConfigurations = { %s = ...; } // import %s { inherit inputs self; };\n",
					oneLine(h.Name), oneLine(parts[1]), h.FlakeAttr, name, oneLine(f.Import))
				continue
			}
			self, _, err := g.flake(h.Flake)
			if err != nil {
				return nil, fmt.Errorf("host %s: flake: %w", h.Name, err)
			}
			if h.Flake != o.Flake {
				f.Warnings = append(f.Warnings, fmt.Sprintf("%s: attr %q is not of the exported flake %s: the file reads it with builtins.getFlake, which needs --impure", h.Name, h.FlakeAttr, o.Flake))
			}
			entry(&body, fmt.Sprintf("%s: attr = %q", h.Name, h.FlakeAttr), name, self+".nixosConfigurations."+sel)
		default:
			return nil, fmt.Errorf("host %s: nothing to build", h.Name)
		}
		f.Hosts = append(f.Hosts, h.Name)
	}
	inventory, err := g.values.inventoryBinding()
	if err != nil {
		return nil, err
	}
	f.Warnings = append(f.Warnings, g.values.warnings...)

	var b strings.Builder
	b.WriteString("{ self, inputs ? self.inputs, ... }:\nlet\n")
	b.WriteString("  # fleet passes a flake's inputs without self, as builtins.getFlake has them.\n")
	b.WriteString("  inputs' = builtins.removeAttrs inputs [ \"self\" ];\n")
	if inventory != "" {
		b.WriteString("  # inventory(): every host of fleet.star.\n")
		fmt.Fprintf(&b, "  fleetInventory = let inputs = inputs'; lib = inputs.nixpkgs.lib; in %s;\n", inventory)
	}
	b.WriteString(g.lets.String())
	b.WriteString("in\n{")
	b.WriteString(body.String())
	b.WriteString("}\n")
	f.Text = b.String()
	return f, nil
}
