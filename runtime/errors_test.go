package runtime_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/fleet-deploy/fleet/runtime"
	"go.starlark.net/starlark"
)

// TestSnippetEscapesControlBytes: the source line an error shows has its
// control characters and bytes that are not UTF-8 escaped, so that a
// script (or a host name written in it) cannot drive the terminal, and
// the caret still stands under the column.
func TestSnippetEscapesControlBytes(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"escape and invalid byte", "x = \"a\xffb\x1b[2J\" + y\n",
			"fleet.star:1:17: undefined: y\n" +
				"    1 | x = \"a\\xffb\\x1b[2J\" + y\n" +
				"      |                       ^"},
		{"OSC 52", "x = \"\x1b]52;c;aGk=\x07\" + y\n",
			"fleet.star:1:22: undefined: y\n" +
				"    1 | x = \"\\x1b]52;c;aGk=\\x07\" + y\n" +
				"      |                            ^"},
		{"tabs and non-ASCII kept", "x = \"é\u2028\"\t+ y\n",
			"fleet.star:1:12: undefined: y\n" +
				"    1 | x = \"é\\u2028\"\t+ y\n" +
				"      |              \t  ^"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			if err := os.WriteFile(filepath.Join(dir, "fleet.star"), []byte(tt.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := runtime.Load(context.Background(), "fleet.star", starlark.StringDict{})
			var se *runtime.ScriptError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a script error", err)
			}
			if got := se.Detail(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
