package flakeref

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fleet-deploy/fleet/internal/nixenc"
)

// Overrides is the Nix attribute set of the flakes that replace inputs
// (--override-input NAME=FLAKE): { NAME = builtins.getFlake "URL"; ... },
// sorted by name, each FLAKE named as URL names it.
func Overrides(overrides map[string]string) (string, error) {
	names := make([]string, 0, len(overrides))
	for n := range overrides {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{ ")
	for _, n := range names {
		an, err := nixenc.AttrName(n)
		if err != nil {
			return "", err
		}
		url, err := URL(overrides[n])
		if err != nil {
			return "", fmt.Errorf("--override-input %s: %w", n, err)
		}
		lit, err := nixenc.String(url)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s = builtins.getFlake %s; ", an, lit)
	}
	b.WriteString("}")
	return b.String(), nil
}
