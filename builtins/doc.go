package builtins

import (
	"fmt"
	"strings"
)

// Markdown renders the reference of every builtin from its Doc, for
// docs/builtins.md.
func Markdown() string {
	var b strings.Builder
	b.WriteString("# fleet.star builtins\n\n")
	b.WriteString("Generated from the builtins' own documentation (`go test ./builtins -run TestDocs` checks it; `UPDATE_DOCS=1` rewrites it).\n")
	b.WriteString("Besides these, every file has Starlark's own builtins, `struct(...)` and the `json` module.\n\n")
	for _, bi := range All() {
		sig, body, _ := strings.Cut(bi.Doc, "\n\n")
		fmt.Fprintf(&b, "## %s\n\n```python\n%s\n```\n\n%s\n\n", bi.Name, sig, strings.TrimSpace(body))
	}
	return b.String()
}
