package nixgen

import (
	"fmt"

	"github.com/fleet-deploy/fleet/internal/colmena"
	"github.com/fleet-deploy/fleet/internal/flakeref"
	"github.com/fleet-deploy/fleet/runtime"
)

// colmenaNode is how the system of a colmena_node host is evaluated:
// node NAME of its hive, evaluated once per hive by fleet's colmena
// evaluator (internal/colmena) and bound in the let as colmenaN.
func (g *generator) colmenaNode(h *runtime.Host, sel string) (string, error) {
	c := h.NixOS.Colmena
	key := "file:" + c.File
	if c.File == "" {
		key = "flake:" + h.NixOS.Flake
	}
	v, ok := g.hives[key]
	if !ok {
		var hive string
		if c.File != "" {
			var err error
			if hive, err = colmena.FileExpr(c.File); err != nil {
				return "", fmt.Errorf("host %s: %w", h.Name, err)
			}
		} else {
			var flake string
			if len(g.overrides) > 0 {
				// Not g.flake's getFlake: it would fetch what the
				// overrides replace (see colmena.Flake).
				url, err := flakeref.URL(h.NixOS.Flake)
				if err == nil {
					flake, err = colmena.Flake(url, g.overrides)
				}
				if err != nil {
					return "", fmt.Errorf("host %s: flake: %w", h.Name, err)
				}
			} else {
				self, _, err := g.flake(h.NixOS.Flake)
				if err != nil {
					return "", fmt.Errorf("host %s: flake: %w", h.Name, err)
				}
				flake = self
			}
			hive = colmena.FlakeExpr("(" + flake + ")")
		}
		if g.hives == nil {
			g.hives = map[string]string{}
		}
		v = fmt.Sprintf("colmena%d", len(g.hives))
		g.hives[key] = v
		fmt.Fprintf(&g.lets, "  %s = %s;\n", v, hive)
	}
	node, err := colmena.NodeAttr(c.Node)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", h.Name, err)
	}
	return v + ".nodes." + node + sel, nil
}
