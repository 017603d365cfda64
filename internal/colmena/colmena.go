// Package colmena reads a colmena hive as colmena does and builds its
// nodes the same way: a flake's `colmena` output (a hive), its
// `colmenaHive` output (a hive colmena.lib.makeHive evaluated), or a
// non-flake hive.nix. eval.nix is fleet's equivalent of colmena's own
// evaluator (its deployment options module, defaults and specialArgs);
// Read evaluates every node's config.deployment whole through the NixOS
// module system, and HiveExpr is the expression nixgen builds the nodes'
// systems from. generate.go writes the fleet.star of `fleet init
// --from-colmena`.
package colmena

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/internal/localnix"
	"github.com/fleet-deploy/fleet/internal/nixenc"
	"golang.org/x/sync/errgroup"
)

// evalNix evaluates a hive; see its header.
//
//go:embed eval.nix
var evalNix string

// Source says where a hive is: a flake (Flake, as given, "." for the
// working directory) or a non-flake hive file (File).
type Source struct {
	Flake string
	File  string
	// Overrides replace flake inputs by name (--override-input
	// NAME=FLAKE); such inputs are never fetched.
	Overrides map[string]string
}

// Hive is a colmena hive as colmena evaluates it.
type Hive struct {
	Source
	// Dir is the absolute directory of a local flake, or of File.
	Dir string
	// Nodes in name order.
	Nodes []*Node
}

// Node is one node and its config.deployment, as colmena's options
// module has it (its defaults included).
type Node struct {
	Name   string
	System string // "" when unknown

	TargetHost                 *string // nil: null, no remote deployment
	TargetPort                 *int    // nil: null, ssh_config or 22
	TargetUser                 *string // nil: null, ssh_config or the local user
	AllowLocalDeployment       bool
	BuildOnTarget              bool
	Tags                       []string
	Keys                       []Key
	ReplaceUnknownProfiles     bool
	PrivilegeEscalationCommand []string
	SSHOptions                 []string

	// Err is set when the node could not be evaluated.
	Err string
}

// Key is a deployment.keys entry; exactly one of Text, KeyFile and
// KeyCommand is set.
type Key struct {
	Attr        string   `json:"attr"` // the name under deployment.keys
	Name        string   `json:"name"` // the file name
	DestDir     string   `json:"destDir"`
	User        string   `json:"user"`
	Group       string   `json:"group"`
	Permissions string   `json:"permissions"`
	UploadAt    string   `json:"uploadAt"`
	Text        *string  `json:"text"`
	KeyFile     *string  `json:"keyFile"`
	KeyCommand  []string `json:"keyCommand"`
}

// Dest is where the key is written on the node.
func (k Key) Dest() string { return strings.TrimRight(k.DestDir, "/") + "/" + k.Name }

type rawNode struct {
	Name       string  `json:"name"`
	System     *string `json:"system"`
	Deployment struct {
		TargetHost                 *string  `json:"targetHost"`
		TargetPort                 *int     `json:"targetPort"`
		TargetUser                 *string  `json:"targetUser"`
		AllowLocalDeployment       bool     `json:"allowLocalDeployment"`
		BuildOnTarget              bool     `json:"buildOnTarget"`
		Tags                       []string `json:"tags"`
		Keys                       []Key    `json:"keys"`
		ReplaceUnknownProfiles     bool     `json:"replaceUnknownProfiles"`
		PrivilegeEscalationCommand []string `json:"privilegeEscalationCommand"`
		SSHOptions                 []string `json:"sshOptions"`
	} `json:"deployment"`
}

type rawHive struct {
	Names   []string  `json:"names"`
	Nodes   []rawNode `json:"nodes"`
	OutPath *string   `json:"source"`
}

// IsLocal reports whether flake names a local directory rather than a
// flake reference with a scheme.
func IsLocal(flake string) bool {
	return !strings.Contains(flake, ":") || strings.HasPrefix(flake, ".") || strings.HasPrefix(flake, "/")
}

// Read evaluates the hive of src with `nix eval`: every node at once;
// when that fails, node by node, so that one node that does not
// evaluate does not hide the others (its Err says why).
func Read(ctx context.Context, src Source) (*Hive, error) {
	h := &Hive{Source: src}
	expr, err := h.locate()
	if err != nil {
		return nil, err
	}
	raw, err := eval(ctx, expr, nil)
	if err != nil {
		names, nerr := eval(ctx, expr, []string{})
		if nerr != nil {
			return nil, err
		}
		raw = &rawHive{Names: names.Names, OutPath: names.OutPath, Nodes: make([]rawNode, len(names.Names))}
		errs := make([]string, len(names.Names))
		var g errgroup.Group
		g.SetLimit(2)
		for i, name := range names.Names {
			g.Go(func() error {
				one, err := eval(ctx, expr, []string{name})
				if err != nil {
					errs[i] = err.Error()
					var ee *evalError
					if errors.As(err, &ee) {
						errs[i] = ee.msg
					}
					raw.Nodes[i] = rawNode{Name: name}
					return nil
				}
				raw.Nodes[i] = one.Nodes[0]
				return nil
			})
		}
		g.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		for i := range raw.Nodes {
			h.Nodes = append(h.Nodes, h.convert(raw.Nodes[i], raw.OutPath, errs[i]))
		}
		return h, nil
	}
	for _, n := range raw.Nodes {
		h.Nodes = append(h.Nodes, h.convert(n, raw.OutPath, ""))
	}
	return h, nil
}

// locate resolves the source and returns the Nix expression of the hive.
func (h *Hive) locate() (string, error) {
	if h.File != "" {
		abs, err := filepath.Abs(h.File)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(abs); err != nil {
			return "", fmt.Errorf("colmena hive %s: %w", h.File, err)
		}
		h.Dir = filepath.Dir(abs)
		return FileExpr(abs)
	}
	ref := h.Flake
	if IsLocal(ref) {
		abs, err := filepath.Abs(ref)
		if err != nil {
			return "", err
		}
		if _, err := os.Stat(filepath.Join(abs, "flake.nix")); err != nil {
			return "", fmt.Errorf("%s: no flake.nix there", h.Flake)
		}
		// As nix build names it: in a git work tree, only tracked files
		// reach the store (internal/flakeref).
		if ref, err = flakeref.URL(abs); err != nil {
			return "", err
		}
		h.Dir = abs
	}
	flake, err := Flake(ref, h.Overrides)
	if err != nil {
		return "", err
	}
	return FlakeExpr(flake), nil
}

// Flake is the Nix expression of the flake url (a flake URL, as
// flakeref.URL names it), with the inputs overrides names replaced.
// Without overrides it is builtins.getFlake url. With them, getFlake is
// not called on url (it would lock, so fetch, every input flake.lock
// lacks): the flake's outputs function is called with the overrides and,
// for the other inputs, getFlake's (only fetched when used).
func Flake(url string, overrides map[string]string) (string, error) {
	lit, err := nixenc.String(url)
	if err != nil {
		return "", err
	}
	if len(overrides) == 0 {
		return "builtins.getFlake " + lit, nil
	}
	o, err := flakeref.Overrides(overrides)
	if err != nil {
		return "", err
	}
	src, sub, err := source(url)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf(`let
    src = %[3]s;
    dir = src.outPath + %[4]s;
    o = %[2]s;
    declared = (import (dir + "/flake.nix")).inputs or { };
    inputs = builtins.mapAttrs (n: _: o.${n} or (builtins.getFlake %[1]s).inputs.${n}) declared // o;
    outputs = (import (dir + "/flake.nix")).outputs (inputs // { inherit self; });
    self = src // outputs // { _type = "flake"; outPath = dir; inherit inputs outputs; sourceInfo = src; };
  in self`, lit, o, src, sub), nil
}

// source is the expression of the source tree of flake url, as Nix
// fetches it without locking its inputs, and the flake's directory in it
// (a Nix string literal: "" or "/DIR").
func source(u string) (string, string, error) {
	sub := ""
	var tree string
	if p, ok := strings.CutPrefix(u, "path:"); ok {
		p, _, _ = strings.Cut(p, "?")
		lit, err := nixenc.String(p)
		if err != nil {
			return "", "", err
		}
		tree = "builtins.fetchTree { type = \"path\"; path = " + lit + "; }"
	} else if p, ok := strings.CutPrefix(u, "git+file://"); ok {
		p, query, _ := strings.Cut(p, "?")
		for _, kv := range strings.Split(query, "&") {
			if d, ok := strings.CutPrefix(kv, "dir="); ok {
				d, err := url.QueryUnescape(d)
				if err != nil {
					return "", "", err
				}
				sub = "/" + d
			}
		}
		lit, err := nixenc.String("file://" + p)
		if err != nil {
			return "", "", err
		}
		tree = "builtins.fetchTree { type = \"git\"; url = " + lit + "; }"
	} else {
		lit, err := nixenc.String(u)
		if err != nil {
			return "", "", err
		}
		tree = "(builtins.getFlake " + lit + ").sourceInfo"
	}
	subLit, err := nixenc.String(sub)
	if err != nil {
		return "", "", err
	}
	return tree, subLit, nil
}

// FlakeExpr is the evaluated hive of the flake that flake (a Nix
// expression) evaluates to.
func FlakeExpr(flake string) string {
	return fmt.Sprintf("(%s\n) { flake = %s; }", evalNix, flake)
}

// FileExpr is the evaluated hive of the non-flake hive file abs.
func FileExpr(abs string) (string, error) {
	lit, err := nixenc.String(abs)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("(%s\n) { hive = /. + %s; }", evalNix, lit), nil
}

// NodeAttr is node name as an attribute of a hive's nodes: hive.nodes.NAME
// is the node's NixOS (its config, its system config.system.build.toplevel).
func NodeAttr(name string) (string, error) { return nixenc.AttrName(name) }

func (h *Hive) convert(r rawNode, outPath *string, errMsg string) *Node {
	d := r.Deployment
	n := &Node{
		Name: r.Name, Err: errMsg,
		TargetHost: d.TargetHost, TargetPort: d.TargetPort, TargetUser: d.TargetUser,
		AllowLocalDeployment: d.AllowLocalDeployment, BuildOnTarget: d.BuildOnTarget,
		Tags: d.Tags, Keys: d.Keys, ReplaceUnknownProfiles: d.ReplaceUnknownProfiles,
		PrivilegeEscalationCommand: d.PrivilegeEscalationCommand, SSHOptions: d.SSHOptions,
	}
	if r.System != nil {
		n.System = *r.System
	}
	// A keyFile in the flake's store copy is read from the flake's
	// directory, as the user edits it.
	for i, k := range n.Keys {
		if k.KeyFile != nil && outPath != nil && h.Dir != "" && h.File == "" {
			if rel, ok := strings.CutPrefix(*k.KeyFile, *outPath+"/"); ok {
				p := filepath.Join(h.Dir, rel)
				n.Keys[i].KeyFile = &p
			}
		}
	}
	return n
}

func eval(ctx context.Context, hive string, only []string) (*rawHive, error) {
	sel := "null"
	if only != nil {
		var b strings.Builder
		b.WriteString("[")
		for _, n := range only {
			s, err := nixenc.String(n)
			if err != nil {
				return nil, err
			}
			b.WriteString(" " + s)
		}
		b.WriteString(" ]")
		sel = b.String()
	}
	expr := fmt.Sprintf("let hive = %s; in { inherit (hive) names; nodes = hive.fleet.read %s; source = hive.fleet.source; }", hive, sel)
	cmd := exec.CommandContext(ctx, "nix", localnix.Args("eval", "--json", "--impure", "--expr", expr)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("nix not found: install Nix to read a colmena hive")
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := lastError(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stderr.String())
		}
		if strings.Contains(msg, "unable to download") {
			msg += " (an input of the hive's flake cannot be fetched: replace it with --override-input NAME=FLAKE)"
		}
		if strings.Contains(msg, "requires lock file changes") {
			msg = "its flake.lock is missing or out of date: run `nix flake lock` first (fleet reads and builds the flake with builtins.getFlake, which does not update flake.lock), or replace inputs with --override-input"
		}
		return nil, &evalError{msg: msg}
	}
	var raw rawHive
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("reading the colmena hive: %w", err)
	}
	if only != nil && len(raw.Nodes) != len(only) {
		return nil, fmt.Errorf("reading the colmena hive: %d nodes for %d names", len(raw.Nodes), len(only))
	}
	return &raw, nil
}

// evalError is a failed evaluation of the hive.
type evalError struct{ msg string }

func (e *evalError) Error() string { return "reading the colmena hive: " + e.msg }

// lastError is the message of the last "error:" of a Nix log, with the
// lines that continue it.
func lastError(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "error:") {
			msg := strings.TrimSpace(strings.TrimPrefix(l, "error:"))
			if msg == "" && i+1 < len(lines) { // Nix 2.8 puts the message on the next lines
				var rest []string
				for _, r := range lines[i+1:] {
					r = strings.TrimSpace(r)
					if r == "" || strings.HasPrefix(r, "(use '--show-trace'") {
						continue
					}
					rest = append(rest, r)
				}
				msg = strings.Join(rest, " ")
			}
			return msg
		}
	}
	return ""
}
