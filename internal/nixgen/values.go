package nixgen

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// values encodes the values of modules and special_args under a policy.
// It copies a value with fleet's own values (path(), nix_expr(), hosts,
// inventory()) replaced by Nix code (nixenc.Nixer), then lets nixenc
// encode the copy, so that nixenc alone walks and checks the data.
type values struct {
	policy
	hosts     map[*runtime.Host]*hostCode
	inventory *inventoryCode // once an inventory() was seen
	warned    map[string]bool
	warnings  []string // paths outside the flake
}

func newValues(p policy) *values {
	return &values{policy: p, hosts: map[*runtime.Host]*hostCode{}, warned: map[string]bool{}}
}

// encode encodes v; name is the root of the positions in nixenc's errors.
func (vs *values) encode(name string, v starlark.Value) (string, error) {
	return nixenc.EncodeNamed(name, vs.copy(v, 0, map[starlark.Value]starlark.Value{}))
}

// inventoryBinding is the file's fleetInventory, or "" when no
// inventory() was seen.
func (vs *values) inventoryBinding() (string, error) {
	if vs.inventory == nil {
		return "", nil
	}
	return nixenc.EncodeNamed("inventory()", vs.inventory)
}

// copy returns v with fleet's values replaced by their code. Containers
// being copied are in copying, so that a cyclic value gives a copy of
// the same shape, which nixenc rejects as it rejects the original.
// Containers deeper than nixenc accepts are left as they are: nixenc
// rejects them before it looks inside.
func (vs *values) copy(v starlark.Value, depth int, copying map[starlark.Value]starlark.Value) starlark.Value {
	switch v := v.(type) {
	case *runtime.Path:
		return vs.path(v)
	case *runtime.NixExpr:
		return &code{expr: v.Code, shown: v.String(), typ: v.Type()}
	case *runtime.Host:
		return vs.host(v)
	case *runtime.Inventory:
		if vs.inventory == nil {
			vs.inventory = &inventoryCode{}
			for _, h := range v.Hosts() {
				vs.inventory.hosts = append(vs.inventory.hosts, vs.host(h))
			}
		}
		if vs.inFile() { // written once, as fleetInventory
			return &code{expr: "fleetInventory", shown: "inventory()", typ: "inventory"}
		}
		return vs.inventory
	}
	if depth >= nixenc.MaxDepth {
		return v
	}
	switch v := v.(type) {
	case *starlark.List:
		if c, ok := copying[v]; ok {
			return c
		}
		c := starlark.NewList(make([]starlark.Value, 0, v.Len()))
		copying[v] = c
		defer delete(copying, v)
		for i := 0; i < v.Len(); i++ {
			c.Append(vs.copy(v.Index(i), depth+1, copying))
		}
		return c
	case starlark.Tuple:
		c := make(starlark.Tuple, len(v))
		for i := range v {
			c[i] = vs.copy(v[i], depth+1, copying)
		}
		return c
	case *starlark.Dict:
		if c, ok := copying[v]; ok {
			return c
		}
		c := starlark.NewDict(v.Len())
		copying[v] = c
		defer delete(copying, v)
		for _, kv := range v.Items() {
			c.SetKey(kv[0], vs.copy(kv[1], depth+1, copying)) // kv[0] hashed in v already
		}
		return c
	case *starlarkstruct.Struct:
		fields := starlark.StringDict{}
		for name, f := range v.Entries() {
			fields[name] = vs.copy(f, depth+1, copying)
		}
		return starlarkstruct.FromStringDict(v.Constructor(), fields)
	}
	return v
}

// host is the code of h, whose vars are copied once.
func (vs *values) host(h *runtime.Host) *hostCode {
	if c, ok := vs.hosts[h]; ok {
		return c
	}
	c := &hostCode{h: h}
	vs.hosts[h] = c
	if h.Vars != nil {
		// At depth 1: nixenc encodes the vars inside the host's own
		// attribute set.
		c.vars = vs.copy(h.Vars, 1, map[starlark.Value]starlark.Value{})
	} else {
		c.vars = starlark.None
	}
	return c
}

// safePath matches absolute paths Nix accepts as path literals;
// safeRel, relative ones.
var (
	safePath = regexp.MustCompile(`^(/[A-Za-z0-9._+-]+)+$`)
	safeRel  = regexp.MustCompile(`^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$`)
)

// path is p under the policy: an absolute path, or a path relative to
// the file's directory (with a warning when the flake cannot read it).
func (vs *values) path(p *runtime.Path) *code {
	c := &code{shown: p.String(), typ: p.Type()}
	if !vs.inFile() {
		if safePath.MatchString(p.Abs) && !strings.Contains(p.Abs, "//") {
			c.expr = p.Abs
		} else {
			s, err := nixenc.String(p.Abs)
			c.expr, c.err = "/. + "+s, err
		}
		return c
	}
	rel, err := filepath.Rel(vs.dir, p.Abs)
	if err != nil {
		c.err = fmt.Errorf("path %s: %w", p.Abs, err)
		return c
	}
	rel = filepath.ToSlash(rel)
	if inFlake, err := filepath.Rel(vs.flake, p.Abs); err != nil || inFlake == ".." || strings.HasPrefix(inFlake, "../") {
		if !vs.warned[p.Abs] {
			vs.warned[p.Abs] = true
			vs.warnings = append(vs.warnings, fmt.Sprintf("%s is outside the flake %s: a flake cannot read it in pure evaluation", p.Abs, vs.flake))
		}
	}
	switch {
	case rel == ".":
		c.expr = "./."
	case rel == "..":
		c.expr = "./.."
	case safeRel.MatchString(rel) && strings.HasPrefix(rel, "../"):
		c.expr = rel // a path literal as it is
	case safeRel.MatchString(rel):
		c.expr = "./" + rel
	default:
		s, err := nixenc.String("/" + rel)
		c.expr, c.err = "./. + "+s, err
	}
	return c
}

// code is Nix code standing for one of fleet's values: a path,
// nix_expr() code, a variable of the generated file. nixenc splices it
// in parentheses; err is reported where the value is.
type code struct {
	expr, shown, typ string
	err              error
}

func (c *code) NixExpr() (string, error) { return c.expr, c.err }
func (c *code) String() string           { return c.shown }
func (c *code) Type() string             { return c.typ }
func (c *code) Freeze()                  {}
func (c *code) Truth() starlark.Bool     { return starlark.True }
func (c *code) Hash() (uint32, error)    { return starlark.String(c.expr).Hash() }

// hostCode is a host as an attribute set, so that modules can read the
// inventory (special_args = {"hosts": ...}) as the seed's factory does.
type hostCode struct {
	h    *runtime.Host
	vars starlark.Value // copied
	busy bool
}

func (c *hostCode) NixExpr() (string, error) {
	if c.busy {
		return "", fmt.Errorf("host %s contains itself (inventory() in its vars)", c.h.Name)
	}
	c.busy = true
	defer func() { c.busy = false }()
	h := c.h
	tags := make([]starlark.Value, len(h.Tags))
	for i, t := range h.Tags {
		tags[i] = starlark.String(t)
	}
	target := starlark.Value(starlark.None)
	if h.TargetHost != "" {
		target = starlark.String(h.TargetHost)
	}
	d := starlark.NewDict(10)
	d.SetKey(starlark.String("name"), starlark.String(h.Name))
	d.SetKey(starlark.String("system"), starlark.String(h.System))
	d.SetKey(starlark.String("targetHost"), target)
	d.SetKey(starlark.String("targetUser"), starlark.String(h.User()))
	d.SetKey(starlark.String("targetPort"), starlark.MakeInt(h.Port()))
	d.SetKey(starlark.String("allowLocal"), starlark.Bool(h.AllowLocal))
	d.SetKey(starlark.String("deployable"), starlark.Bool(h.Deployable()))
	d.SetKey(starlark.String("tags"), starlark.NewList(tags))
	d.SetKey(starlark.String("vars"), c.vars)
	return nixenc.EncodeNamed("host("+h.Name+")", d)
}

func (c *hostCode) String() string        { return c.h.String() }
func (c *hostCode) Type() string          { return c.h.Type() }
func (c *hostCode) Freeze()               {}
func (c *hostCode) Truth() starlark.Bool  { return starlark.True }
func (c *hostCode) Hash() (uint32, error) { return c.h.Hash() }

// inventoryCode is inventory(): { NAME = <host>; ... } over every host.
// Its code is written once and then reused.
type inventoryCode struct {
	hosts []*hostCode
	expr  string
	busy  bool
}

func (c *inventoryCode) NixExpr() (string, error) {
	if c.expr != "" {
		return c.expr, nil
	}
	if c.busy {
		return "", fmt.Errorf("inventory() contains itself (inventory() in a host's vars)")
	}
	c.busy = true
	defer func() { c.busy = false }()
	var b strings.Builder
	b.WriteString("{ ")
	for _, h := range c.hosts {
		name, err := nixenc.AttrName(h.h.Name)
		if err != nil {
			return "", err
		}
		v, err := h.NixExpr()
		if err != nil {
			return "", err
		}
		b.WriteString(name + " = " + v + "; ")
	}
	b.WriteString("}")
	c.expr = b.String()
	return c.expr, nil
}

func (c *inventoryCode) String() string        { return "inventory()" }
func (c *inventoryCode) Type() string          { return "inventory" }
func (c *inventoryCode) Freeze()               {}
func (c *inventoryCode) Truth() starlark.Bool  { return starlark.True }
func (c *inventoryCode) Hash() (uint32, error) { return 0, nil }
