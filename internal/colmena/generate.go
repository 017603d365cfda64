package colmena

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

// FlakeRef is how a fleet.star in dir names the hive's flake: a relative
// directory ("." when it is dir itself) or the reference as given.
func (h *Hive) FlakeRef(dir string) string {
	if h.Dir == "" {
		return h.Flake
	}
	rel, err := filepath.Rel(dir, h.Dir)
	if err != nil {
		return h.Dir
	}
	rel = filepath.ToSlash(rel)
	if rel == "." || strings.HasPrefix(rel, "../") || rel == ".." {
		return rel
	}
	return "./" + rel
}

// Notes are what the user must do after the conversion, one line each,
// for the command to print.
func (h *Hive) Notes() []string {
	var notes []string
	for _, n := range h.Nodes {
		switch {
		case !runtime.ValidName(n.Name):
			notes = append(notes, fmt.Sprintf("%s: not a valid fleet host name: left as a TODO comment", n.Name))
		case !n.HasConfig:
			notes = append(notes, fmt.Sprintf("%s: the flake has no nixosConfigurations.%s: left as a TODO comment", n.Name, n.Name))
		case n.Err != "":
			notes = append(notes, fmt.Sprintf("%s: deployment settings could not be read (see the TODO): listed without target", n.Name))
		}
		if len(n.Unreadable) > 0 {
			notes = append(notes, fmt.Sprintf("%s: deployment.%s could not be read without colmena: defaults used (see the TODO)", n.Name, strings.Join(n.Unreadable, ", deployment.")))
		}
		for _, k := range n.Keys {
			if k.Source.Text || (len(k.Source.KeyCommand) == 0 && k.Source.KeyFile == "") {
				notes = append(notes, fmt.Sprintf("%s: deployment.keys.%s has inline text, not copied (see the TODO)", n.Name, k.Name))
			}
		}
	}
	return notes
}

// Generate writes the fleet.star, to be written in dir, that deploys
// the hive's nodes: each one a host() that builds the flake's
// nixosConfigurations.<name>, with its deployment settings.
func (h *Hive) Generate(dir string) string {
	ref := h.FlakeRef(dir)
	var b strings.Builder
	where := "the flake in this directory"
	if ref != "." {
		where = "the flake " + ref
	}
	fmt.Fprintf(&b, `# fleet.star of the colmena hive of %s, written by
# `+"`fleet init --from-colmena`"+`. Every node is a host() that builds the flake's
# own nixosConfigurations.NAME - the system colmena deploys when that is
# built from the node's modules, as with colmena's makeHive - with the
# node's deployment settings:
#
#   deployment.targetHost            target_host (unset: the node's name, as in colmena)
#   deployment.targetUser            target_user
#   deployment.targetPort            target_port
#   deployment.allowLocalDeployment  allow_local
#   deployment.buildOnTarget         build_on_target
#   deployment.tags                  tags (select with --on @tag, as in colmena)
#   deployment.keys                  keys = [secret(...)]
#
#   fleet hosts            the inventory
#   fleet plan             what `+"`fleet run`"+` would do, touching nothing
#   fleet run --on @TAG    deploy (colmena apply --on @TAG)
#
# There is no deploy(ctx): fleet runs its default strategy, what colmena
# apply does (build all, push all, activate all). fleet's builtins and
# rollout strategies are documented in docs/builtins.md and README.md.
`, where)
	for _, n := range h.Nodes {
		b.WriteString("\n")
		h.node(&b, n, ref)
	}
	var only []string
	for _, c := range h.Configs {
		found := false
		for _, n := range h.Nodes {
			found = found || n.Name == c
		}
		if !found {
			only = append(only, c)
		}
	}
	if len(only) > 0 {
		fmt.Fprintf(&b, "\n# Not colmena nodes, so not in this inventory: nixosConfigurations.%s.\n", strings.Join(only, ", nixosConfigurations."))
		fmt.Fprintf(&b, "# Declare them with host(name = ..., attr = %s) to deploy them too.\n", quote(ref+"#nixosConfigurations.NAME"))
	}
	return b.String()
}

func (h *Hive) node(b *strings.Builder, n *Node, ref string) {
	attr := ref + "#nixosConfigurations." + n.Name
	var lines, todo []string
	arg := func(name, value string) { lines = append(lines, fmt.Sprintf("    %s = %s,", name, value)) }
	comment := func(text string) { lines = append(lines, "    # "+text) }

	arg("name", quote(n.Name))
	if n.System != "" {
		arg("system", quote(n.System))
	}
	switch {
	case n.Err != "":
		todo = append(todo,
			"TODO(colmena): the node's deployment settings could not be read without",
			"colmena, so it is listed without target_host (never deployed). Set",
			"target_host, target_user, tags, ... as in the hive. Nix said:")
		for _, l := range wrapText(n.Err, 70) {
			todo = append(todo, "  "+l)
		}
	case n.TargetHost == nil:
		comment("deployment.targetHost = null: colmena deploys it only locally")
		comment("(apply-local). Without target_host fleet lists it, never deploys it.")
	default:
		if n.TargetHostDefault {
			comment("deployment.targetHost is unset: colmena's default, the node's name.")
		}
		arg("target_host", quote(*n.TargetHost))
		if n.TargetUser != "root" && n.TargetUser != "" {
			arg("target_user", quote(n.TargetUser))
		}
		if n.TargetPort != 0 {
			arg("target_port", fmt.Sprint(n.TargetPort))
		}
	}
	if n.AllowLocal {
		arg("allow_local", "True")
	}
	if n.BuildOnTarget {
		arg("build_on_target", "True")
	}
	var tags, bad []string
	for _, t := range n.Tags {
		if runtime.ValidName(t) {
			tags = append(tags, quote(t))
		} else {
			bad = append(bad, t)
		}
	}
	if len(bad) > 0 {
		comment(fmt.Sprintf("TODO(colmena): not valid fleet tags (letters, digits, '.', '_', '-'), left out: %s", strings.Join(bad, ", ")))
	}
	if len(tags) > 0 {
		arg("tags", "["+strings.Join(tags, ", ")+"]")
	}
	if len(n.Unreadable) > 0 {
		comment(fmt.Sprintf("TODO(colmena): deployment.%s could not be read without colmena", strings.Join(n.Unreadable, ", deployment.")))
		comment("(it depends on config, or failed): the defaults are used. Check them.")
	}
	var keys []string
	for _, k := range n.Keys {
		if k.Source.Text || (len(k.Source.KeyCommand) == 0 && k.Source.KeyFile == "") {
			comment(fmt.Sprintf("TODO(colmena): deployment.keys.%s has its text inline in the hive; it is", k.Name))
			comment("not copied here. Put it in a file (or a command such as pass) and add")
			comment("to keys: " + secretCall(k, `file = "..."`) + ",")
			continue
		}
		keys = append(keys, secretCall(k, ""))
	}
	if len(keys) > 0 {
		comment("deployment.keys: uploaded on deploy, as colmena does.")
		lines = append(lines, "    keys = [")
		for _, k := range keys {
			lines = append(lines, "        "+k+",")
		}
		lines = append(lines, "    ],")
	}
	arg("attr", quote(attr))

	switch {
	case !runtime.ValidName(n.Name):
		fmt.Fprintf(b, "# TODO(colmena): node %q: not a valid fleet host name (letters, digits,\n", n.Name)
		b.WriteString("# '.', '_' and '-', not starting with '-' or '.'). Rename it and uncomment:\n")
		writeCommented(b, lines)
	case !n.HasConfig:
		fmt.Fprintf(b, "# TODO(colmena): node %q is only in the colmena hive: the flake has no\n", n.Name)
		fmt.Fprintf(b, "# nixosConfigurations.%s, so fleet has nothing to build for it. colmena\n", n.Name)
		b.WriteString("# builds its system from the hive's modules, which fleet does not evaluate.\n")
		fmt.Fprintf(b, "# Add nixosConfigurations.%s to flake.nix from the same modules (e.g.\n", n.Name)
		b.WriteString("# nixpkgs.lib.nixosSystem { modules = [ colmena.defaults colmena.NAME ]; }),\n")
		b.WriteString("# or describe it here with nixos = nixos_system(modules = [...]); then uncomment:\n")
		writeCommented(b, lines)
	default:
		for _, t := range todo {
			b.WriteString("# " + t + "\n")
		}
		b.WriteString("host(\n")
		for _, l := range lines {
			b.WriteString(l + "\n")
		}
		b.WriteString(")\n")
	}
}

func writeCommented(b *strings.Builder, lines []string) {
	b.WriteString("# host(\n")
	for _, l := range lines {
		b.WriteString("# " + l + "\n")
	}
	b.WriteString("# )\n")
}

// secretCall is the secret(...) that stands for a colmena key; source
// replaces the key's own source when not empty.
func secretCall(k Key, source string) string {
	dir := k.DestDir
	if dir == "" {
		dir = "/run/keys"
	}
	args := []string{quote(strings.TrimRight(dir, "/") + "/" + k.Name)}
	switch {
	case source != "":
		args = append(args, source)
	case len(k.Source.KeyCommand) > 0:
		words := make([]string, len(k.Source.KeyCommand))
		for i, w := range k.Source.KeyCommand {
			words[i] = quote(w)
		}
		args = append(args, "command = ["+strings.Join(words, ", ")+"]")
	case k.Source.KeyFile != "":
		args = append(args, "file = "+quote(k.Source.KeyFile))
	}
	if k.User != "" && k.User != "root" {
		args = append(args, "owner = "+quote(k.User))
	}
	if k.Group != "" && k.Group != "root" {
		args = append(args, "group = "+quote(k.Group))
	}
	if k.Permissions != "" && k.Permissions != "0600" {
		args = append(args, "mode = "+quote(k.Permissions))
	}
	if k.UploadAt != "" && k.UploadAt != "pre-activation" {
		args = append(args, "upload = "+quote(k.UploadAt))
	}
	return "secret(" + strings.Join(args, ", ") + ")"
}

// quote is s as a Starlark string literal.
func quote(s string) string { return starlark.String(s).String() }

func wrapText(s string, width int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			out = append(out, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		out = append(out, line)
	}
	return out
}
