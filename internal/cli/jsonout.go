package cli

import (
	"encoding/json"
	"io"
)

// writeJSON writes v as a command's --json output: one document,
// indented two spaces, with <, > and & as they are (programs and people
// read it; nothing embeds it in HTML). Every command's JSON goes
// through here, so that all of them read the same.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
