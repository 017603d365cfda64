// Package stdlib holds the Starlark files that fleet embeds and that
// scripts load as "@fleet//NAME.star": the default deploy strategy and
// the rollout strategies. They are ordinary Starlark, meant to be read and
// copied.
package stdlib

import "embed"

// FS holds the stdlib files.
//
//go:embed *.star
var FS embed.FS

// Prefix is how scripts name stdlib files in load().
const Prefix = "@fleet//"
