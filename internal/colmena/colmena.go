// Package colmena reads an existing colmena hive (a flake's `colmena`
// output) and writes the fleet.star that deploys the same systems: `fleet
// init --from-colmena`.
package colmena

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/internal/nixenc"
	"golang.org/x/sync/errgroup"
)

// hiveNix reads the hive; see its header.
//
//go:embed hive.nix
var hiveNix string

// Hive is what fleet knows of a colmena hive.
type Hive struct {
	// Flake is the flake reference as given ("." for the working
	// directory); Dir its absolute directory when it is local.
	Flake, Dir string
	// Nodes in name order.
	Nodes []*Node
	// Configs are the flake's nixosConfigurations names.
	Configs []string
}

// Node is one node of the hive and its deployment.* settings, with
// colmena's defaults where the hive leaves one unset.
type Node struct {
	Name string
	// HasConfig: the flake has nixosConfigurations.<Name>.
	HasConfig bool
	// System of nixosConfigurations.<Name> (or of the node's nixpkgs);
	// "" when unknown.
	System string

	TargetHost *string // nil: targetHost = null (local deployment only)
	// TargetHostDefault: the hive does not set targetHost, so colmena
	// uses the node's name.
	TargetHostDefault bool
	TargetUser        string // "root" by default
	TargetPort        int    // 0: unset (ssh's default)
	AllowLocal        bool
	BuildOnTarget     bool
	Tags              []string
	Keys              []Key

	// Unreadable are the settings that could not be evaluated without
	// colmena (they depend on config, or failed); defaults are used.
	Unreadable []string
	// Err is set when the node could not be read at all.
	Err string
}

// Key is a deployment.keys entry, without its content.
type Key struct {
	Name        string `json:"name"`
	DestDir     string `json:"destDir"`
	User        string `json:"user"`
	Group       string `json:"group"`
	Permissions string `json:"permissions"`
	UploadAt    string `json:"uploadAt"`
	Source      struct {
		KeyCommand []string `json:"keyCommand"`
		KeyFile    string   `json:"keyFile"`
		Text       bool     `json:"text"`
	} `json:"source"`
}

// setting is one deployment.* value as hive.nix reports it.
type setting[T any] struct {
	Set   bool `json:"set"`
	Value T    `json:"value"`
	Error bool `json:"error"`
}

type rawNode struct {
	Name      string `json:"name"`
	HasConfig bool   `json:"hasConfig"`
	System    struct {
		Value *string `json:"value"`
	} `json:"system"`
	TargetHost           setting[*string]  `json:"targetHost"`
	TargetUser           setting[*string]  `json:"targetUser"`
	TargetPort           setting[*int]     `json:"targetPort"`
	AllowLocalDeployment setting[bool]     `json:"allowLocalDeployment"`
	BuildOnTarget        setting[bool]     `json:"buildOnTarget"`
	Tags                 setting[[]string] `json:"tags"`
	Keys                 struct {
		Value []Key `json:"value"`
		Error bool  `json:"error"`
	} `json:"keys"`
}

type rawHive struct {
	Nodes   []rawNode `json:"nodes"`
	Names   []string  `json:"names"`
	Configs []string  `json:"configs"`
}

// Read evaluates the hive of flake (a local directory, or a flake
// reference with a scheme) with `nix eval`: one evaluation for every
// node; when that fails, node by node, so that one node colmena-only
// code cannot be read does not hide the others.
func Read(ctx context.Context, flake string) (*Hive, error) {
	h := &Hive{Flake: flake}
	ref := flake
	if isLocal(flake) {
		abs, err := filepath.Abs(flake)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(filepath.Join(abs, "flake.nix")); err != nil {
			return nil, fmt.Errorf("%s: no flake.nix there", flake)
		}
		// As nix build names it: in a git work tree, only tracked files
		// reach the store (internal/flakeref).
		if ref, err = flakeref.URL(abs); err != nil {
			return nil, err
		}
		h.Dir = abs
	}
	raw, err := eval(ctx, ref, nil, 3)
	if err != nil {
		// Which nodes? Then each alone, following imports or not.
		raw, err = eval(ctx, ref, []string{}, 0)
		if err != nil {
			return nil, err
		}
		h.Nodes = make([]*Node, len(raw.Names))
		var g errgroup.Group
		g.SetLimit(8)
		for i, name := range raw.Names {
			g.Go(func() error {
				one, err := eval(ctx, ref, []string{name}, 3)
				if err != nil {
					one, err = eval(ctx, ref, []string{name}, 0)
				}
				if err != nil {
					msg := err.Error()
					var ee *evalError
					if errors.As(err, &ee) {
						msg = ee.msg
					}
					h.Nodes[i] = &Node{Name: name, HasConfig: contains(raw.Configs, name), Err: msg}
					return nil
				}
				h.Nodes[i] = convert(one.Nodes[0])
				return nil
			})
		}
		g.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h.Configs = raw.Configs
		return h, nil
	}
	for _, n := range raw.Nodes {
		h.Nodes = append(h.Nodes, convert(n))
	}
	h.Configs = raw.Configs
	return h, nil
}

func isLocal(flake string) bool {
	return !strings.Contains(flake, ":") || strings.HasPrefix(flake, ".") || strings.HasPrefix(flake, "/")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func convert(r rawNode) *Node {
	n := &Node{Name: r.Name, HasConfig: r.HasConfig, TargetUser: "root"}
	if r.System.Value != nil {
		n.System = *r.System.Value
	}
	bad := func(name string, err bool) bool {
		if err {
			n.Unreadable = append(n.Unreadable, name)
		}
		return err
	}
	name := r.Name
	n.TargetHost, n.TargetHostDefault = &name, true
	if !bad("targetHost", r.TargetHost.Error) && r.TargetHost.Set {
		n.TargetHost, n.TargetHostDefault = r.TargetHost.Value, false
	}
	if !bad("targetUser", r.TargetUser.Error) && r.TargetUser.Value != nil {
		n.TargetUser = *r.TargetUser.Value
	}
	if !bad("targetPort", r.TargetPort.Error) && r.TargetPort.Value != nil {
		n.TargetPort = *r.TargetPort.Value
	}
	if !bad("allowLocalDeployment", r.AllowLocalDeployment.Error) {
		n.AllowLocal = r.AllowLocalDeployment.Value
	}
	if !bad("buildOnTarget", r.BuildOnTarget.Error) {
		n.BuildOnTarget = r.BuildOnTarget.Value
	}
	if !bad("tags", r.Tags.Error) {
		n.Tags = r.Tags.Value
	}
	if !bad("keys", r.Keys.Error) {
		n.Keys = r.Keys.Value
	}
	return n
}

// Expr is the Nix expression that reads the hive of the flake reference
// ref: only nil reads every node, depth is how deep imports are followed.
func Expr(ref string, only []string, depth int) (string, error) {
	lit, err := nixenc.String(ref)
	if err != nil {
		return "", err
	}
	o := "null"
	if only != nil {
		var b strings.Builder
		b.WriteString("[")
		for _, n := range only {
			s, err := nixenc.String(n)
			if err != nil {
				return "", err
			}
			b.WriteString(" " + s)
		}
		b.WriteString(" ]")
		o = b.String()
	}
	return fmt.Sprintf("(%s\n) { flake = %s; only = %s; depth = %d; }", hiveNix, lit, o, depth), nil
}

func eval(ctx context.Context, ref string, only []string, depth int) (*rawHive, error) {
	expr, err := Expr(ref, only, depth)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "nix", "--option", "extra-experimental-features", "nix-command flakes",
		"eval", "--json", "--impure", "--expr", expr)
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
		if strings.Contains(msg, "requires lock file changes") {
			dir := flakeref.Dir(ref)
			if dir == "" {
				dir = ref
			}
			msg = fmt.Sprintf("its flake.lock is missing or out of date: run `nix flake lock` in %s first (fleet reads and builds the flake with builtins.getFlake, which does not update flake.lock)", dir)
		}
		return nil, &evalError{ref: ref, msg: msg}
	}
	var raw rawHive
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		return nil, fmt.Errorf("reading the colmena hive of %s: %w", ref, err)
	}
	if only != nil && len(raw.Nodes) != len(only) {
		return nil, fmt.Errorf("reading the colmena hive of %s: %d nodes for %d names", ref, len(raw.Nodes), len(only))
	}
	return &raw, nil
}

// evalError is a failed evaluation of the hive.
type evalError struct{ ref, msg string }

func (e *evalError) Error() string {
	return fmt.Sprintf("reading the colmena hive of %s: %s", e.ref, e.msg)
}

// lastError is the message of the last "error:" of a Nix log, with the
// lines that continue it.
func lastError(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "error: ") || strings.HasPrefix(l, "error:") {
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
