package runtime

import (
	"regexp"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
	"go.starlark.net/starlark"
)

// safePath matches absolute paths Nix accepts as path literals.
var safePath = regexp.MustCompile(`^(/[A-Za-z0-9._+-]+)+$`)

// NixExpr is the path as a Nix path value.
func (p *Path) NixExpr() (string, error) {
	if safePath.MatchString(p.Abs) && !strings.Contains(p.Abs, "//") {
		return p.Abs, nil
	}
	s, err := nixenc.String(p.Abs)
	if err != nil {
		return "", err
	}
	return "/. + " + s, nil
}

// NixExpr is the code itself; the encoder parenthesizes it.
func (e *NixExpr) NixExpr() (string, error) { return e.Code, nil }

// NixExpr is the host as an attribute set, so that modules can read the
// inventory (special_args = {"hosts": ...}) as the seed's factory does.
func (h *Host) NixExpr() (string, error) {
	tags := make([]starlark.Value, len(h.Tags))
	for i, t := range h.Tags {
		tags[i] = starlark.String(t)
	}
	d := starlark.NewDict(10)
	d.SetKey(starlark.String("name"), starlark.String(h.Name))
	d.SetKey(starlark.String("system"), starlark.String(h.System))
	d.SetKey(starlark.String("targetHost"), noneIfEmpty(h.TargetHost))
	d.SetKey(starlark.String("targetUser"), starlark.String(h.TargetUser))
	d.SetKey(starlark.String("targetPort"), starlark.MakeInt(h.TargetPort))
	d.SetKey(starlark.String("allowLocal"), starlark.Bool(h.AllowLocal))
	d.SetKey(starlark.String("deployable"), starlark.Bool(h.Deployable()))
	d.SetKey(starlark.String("tags"), starlark.NewList(tags))
	d.SetKey(starlark.String("vars"), h.Vars)
	return nixenc.EncodeNamed("host("+h.Name+")", d)
}

// Inventory stands for every host of the program; it encodes to Nix as
// an attribute set of hosts by name when a build needs it, by which time
// the inventory is complete.
type Inventory struct{ p *Program }

// NewInventory returns the inventory of p.
func NewInventory(p *Program) *Inventory { return &Inventory{p} }

func (i *Inventory) String() string        { return "inventory()" }
func (i *Inventory) Type() string          { return "inventory" }
func (i *Inventory) Freeze()               {}
func (i *Inventory) Truth() starlark.Bool  { return starlark.True }
func (i *Inventory) Hash() (uint32, error) { return 0, nil }

// NixExpr is { NAME = <host>; ... } over the whole inventory.
func (i *Inventory) NixExpr() (string, error) { return HostsExpr(i.p.Hosts()) }

// HostsExpr is the attribute set { NAME = <host>; ... } of hosts.
func HostsExpr(hosts []*Host) (string, error) {
	var b strings.Builder
	b.WriteString("{ ")
	for _, h := range hosts {
		name, err := nixenc.AttrName(h.Name)
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
	return b.String(), nil
}
