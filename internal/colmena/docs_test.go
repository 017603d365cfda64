package colmena_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/fleet-deploy/fleet/internal/colmena"
)

// guide is docs/from-colmena.md.
func guide(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docs/from-colmena.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section is the text of the guide's "## title" section.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "\n## "+title+"\n")
	if !ok {
		t.Fatalf("docs/from-colmena.md has no section %q", title)
	}
	s, _, _ := strings.Cut(rest, "\n## ")
	return s
}

// TestGuideFile: the fleet.star the guide shows is what init writes.
func TestGuideFile(t *testing.T) {
	doc := guide(t)
	_, rest, _ := strings.Cut(doc, "```python\n")
	shown, _, _ := strings.Cut(rest, "```\n")
	h := &colmena.Hive{Source: colmena.Source{Flake: "."}, Dir: "/hive"}
	if got := h.Generate("/hive"); got != shown {
		t.Errorf("the guide shows\n%s\ninit writes\n%s", shown, got)
	}
}

// colmenaOptions are the options colmena declares for every node (its
// manual's deployment reference): deployment.NAME, and keys.NAME.* (path,
// internal, left out).
var colmenaOptions = struct{ deployment, keys []string }{
	deployment: []string{"targetHost", "targetPort", "targetUser", "allowLocalDeployment", "buildOnTarget",
		"tags", "keys", "replaceUnknownProfiles", "privilegeEscalationCommand", "sshOptions"},
	keys: []string{"name", "text", "keyFile", "keyCommand", "destDir", "user", "group", "permissions", "uploadAt"},
}

// TestGuideSettings: eval.nix declares colmena's options, and the guide's
// table has every one of them.
func TestGuideSettings(t *testing.T) {
	src, err := os.ReadFile("eval.nix")
	if err != nil {
		t.Fatal(err)
	}
	option := regexp.MustCompile(`(?m)^\s+(\w+) = opt `)
	declared := func(from, to string) []string {
		_, s, _ := strings.Cut(string(src), from)
		s, _, _ = strings.Cut(s, to)
		var names []string
		for _, m := range option.FindAllStringSubmatch(s, -1) {
			if m[1] != "path" {
				names = append(names, m[1])
			}
		}
		return names
	}
	if got := declared("options.deployment = {", "withKeyDefaults"); !reflect.DeepEqual(got, colmenaOptions.deployment) {
		t.Errorf("eval.nix declares deployment.%v, colmena %v", got, colmenaOptions.deployment)
	}
	if got := declared("keyOptions = ", "options.deployment"); !reflect.DeepEqual(got, colmenaOptions.keys) {
		t.Errorf("eval.nix declares deployment.keys.NAME.%v, colmena %v", got, colmenaOptions.keys)
	}
	table := section(t, guide(t), "The settings")
	for _, o := range colmenaOptions.deployment {
		if !strings.Contains(table, "| `"+o+"`") && !strings.Contains(table, "| `"+o+".") {
			t.Errorf("the settings table lacks deployment.%s", o)
		}
	}
	for _, o := range colmenaOptions.keys {
		if !strings.Contains(table, "`"+o+"`") {
			t.Errorf("the settings table lacks keys.NAME.%s", o)
		}
	}
}

var noteField = regexp.MustCompile(`deployment\.\w+`)

// checkNotes: every note the fixtures give is explained in the guide's
// "What fleet does differently".
func checkNotes(t *testing.T, notes []string) {
	t.Helper()
	differently := section(t, guide(t), "What fleet does differently")
	for _, n := range notes {
		f := noteField.FindString(n)
		if f == "" || !strings.Contains(differently, "`"+f) {
			t.Errorf("docs/from-colmena.md does not explain the note %q", n)
		}
	}
}
