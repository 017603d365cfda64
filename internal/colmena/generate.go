package colmena

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.starlark.net/starlark"
)

// Ref is how a fleet.star in dir names the hive: the argument of
// colmena_hive and colmena_node, `flake = "."` or `hive = "./hive.nix"`
// (relative when the hive is local).
func (h *Hive) Ref(dir string) string {
	if h.File != "" {
		abs, _ := filepath.Abs(h.File)
		return "hive = " + quote(relative(dir, abs))
	}
	if h.Dir == "" {
		return "flake = " + quote(h.Flake)
	}
	return "flake = " + quote(relative(dir, h.Dir))
}

func relative(dir, abs string) string {
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		return abs
	}
	rel = filepath.ToSlash(rel)
	if rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return rel
	}
	return "./" + rel
}

// Generate is the fleet.star, to be written in dir, that deploys the
// hive as it is: three lines, colmena_hive reads the hive when fleet
// loads the file.
func (h *Hive) Generate(dir string) string {
	return fmt.Sprintf(`# The nodes of a colmena hive, built as colmena builds them and deployed by
# fleet with their deployment.* settings (docs/from-colmena.md).
colmena_hive(%s)
`, h.Ref(dir))
}

// Notes are what fleet does differently for the hive's nodes, one line
// each, for `fleet init` to print.
func (h *Hive) Notes() []string {
	var notes []string
	for _, n := range h.Nodes {
		s, err := n.Map()
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		for _, x := range s.Notes {
			notes = append(notes, n.Name+": "+x)
		}
	}
	return notes
}

// Expand is the fleet.star, to be written in dir, with every node a
// host() call of its own, its deployment settings written out, built by
// the mk_system factory: what colmena_hive does, to read and edit.
func (h *Hive) Expand(dir string) string {
	ref := h.Ref(dir)
	var b strings.Builder
	b.WriteString(`# The nodes of a colmena hive, written out by ` + "`fleet init --from-colmena --expand`" + `:
# every node a host() with its deployment settings,
#
#   deployment.targetHost            target_host (user@host: target_user too)
#   deployment.targetUser            target_user (null: unset, ssh_config decides)
#   deployment.targetPort            target_port (null: unset)
#   deployment.allowLocalDeployment  allow_local
#   deployment.buildOnTarget         build_on_target
#   deployment.tags                  tags (select with --on @tag, as in colmena)
#   deployment.keys                  keys = [secret(...)]
#
# and its system built as colmena builds it (mk_system). colmena_hive(` + ref + `)
# in place of all this deploys the same. See docs/from-colmena.md.

def mk_system(node, note = None):
    # The node's modules and the hive's defaults, evaluated with colmena's
    # deployment options and specialArgs (name, nodes, meta.specialArgs,
    # meta.nodeSpecialArgs) by the node's nixpkgs. note: what fleet does
    # differently from colmena, shown by fleet hosts.
    return colmena_node(node, ` + ref + `, note = note)
`)
	for _, n := range h.Nodes {
		b.WriteString("\n")
		s, err := n.Map()
		if err != nil {
			b.WriteString("# TODO(colmena): left out:\n")
			for _, l := range wrapText(err.Error(), 74) {
				b.WriteString("#   " + l + "\n")
			}
			continue
		}
		writeHost(&b, s, dir, h.Dir)
	}
	return b.String()
}

func writeHost(b *strings.Builder, s *Settings, dir, hiveDir string) {
	for _, x := range s.Notes {
		for i, l := range wrapText(x, 74) {
			if i == 0 {
				b.WriteString("# colmena: " + l + "\n")
			} else {
				b.WriteString("#   " + l + "\n")
			}
		}
	}
	arg := func(name, value string) { fmt.Fprintf(b, "    %s = %s,\n", name, value) }
	b.WriteString("host(\n")
	arg("name", quote(s.Name))
	arg("system", quote(s.System))
	if s.TargetHost != nil {
		arg("target_host", quote(*s.TargetHost))
	}
	if s.TargetUser != nil {
		arg("target_user", quote(*s.TargetUser))
	}
	if s.TargetPort != nil {
		arg("target_port", fmt.Sprint(*s.TargetPort))
	}
	if s.AllowLocal {
		arg("allow_local", "True")
	}
	if s.BuildOnTarget {
		arg("build_on_target", "True")
	}
	if len(s.Tags) > 0 {
		tags := make([]string, len(s.Tags))
		for i, t := range s.Tags {
			tags[i] = quote(t)
		}
		arg("tags", "["+strings.Join(tags, ", ")+"]")
	}
	if len(s.Keys) > 0 {
		b.WriteString("    keys = [\n")
		for _, k := range s.Keys {
			if k.Text != nil {
				fmt.Fprintf(b, "        # deployment.keys.%s.text is inline in the hive, copied here: better\n", k.Attr)
				b.WriteString("        # a command = [...] that decrypts it at deploy time.\n")
			}
			b.WriteString("        " + secretCall(k, dir, hiveDir) + ",\n")
		}
		b.WriteString("    ],\n")
	}
	if note := s.Note(); note != "" {
		arg("nixos", fmt.Sprintf("mk_system(%s, note = %s)", quote(s.Name), quote(note)))
	} else {
		arg("nixos", fmt.Sprintf("mk_system(%s)", quote(s.Name)))
	}
	b.WriteString(")\n")
}

// secretCall is the secret(...) of a colmena key, in a file in dir; a
// key file of the hive's directory is named relative to dir.
func secretCall(k Key, dir, hiveDir string) string {
	args := []string{quote(k.Dest())}
	switch {
	case k.Text != nil:
		args = append(args, "text = "+quote(*k.Text))
	case k.KeyFile != nil:
		f := *k.KeyFile
		if hiveDir != "" && strings.HasPrefix(f, hiveDir+"/") {
			f = relative(dir, f)
		}
		args = append(args, "file = "+quote(f))
	default:
		words := make([]string, len(k.KeyCommand))
		for i, w := range k.KeyCommand {
			words[i] = quote(w)
		}
		args = append(args, "command = ["+strings.Join(words, ", ")+"]")
	}
	for _, o := range [][3]string{{"owner", k.User, "root"}, {"group", k.Group, "root"}, {"mode", k.Permissions, "0600"}, {"upload", k.UploadAt, "pre-activation"}} {
		if o[1] != o[2] {
			args = append(args, o[0]+" = "+quote(o[1]))
		}
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
