package shell

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"nix-store", "nix-store"},
		{"/nix/store/abc-foo-1.0", "/nix/store/abc-foo-1.0"},
		{"--option=value", "--option=value"},
		{"user@host:22", "user@host:22"},
		{"a+b,c%d", "a+b,c%d"},
		{"-", "-"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"''", `''\'''\'''`},
		{"$(id)", "'$(id)'"},
		{"`id`", "'`id`'"},
		{"${HOME}", "'${HOME}'"},
		{"a;b", "'a;b'"},
		{"a\nb", "'a\nb'"},
		{"~", "'~'"},
		{"~root", "'~root'"},
		{"*", "'*'"},
		{"a?", "'a?'"},
		{"[a]", "'[a]'"},
		{"{a,b}", "'{a,b}'"},
		{"#x", "'#x'"},
		{"!", "'!'"},
		{"=ls", "'=ls'"}, // zsh's =cmd expansion
		{"a\\b", `'a\b'`},
		{"a\"b", `'a"b'`},
		{"héllo", "'héllo'"},
		{"\t", "'\t'"},
		{"&", "'&'"},
		{"|", "'|'"},
		{">x", "'>x'"},
	}
	for _, tt := range tests {
		if got := Quote(tt.in); got != tt.want {
			t.Errorf("Quote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		argv []string
		want string
	}{
		{[]string{"echo"}, "echo"},
		{[]string{"echo", "hello world"}, "echo 'hello world'"},
		{[]string{"nix-store", "--import"}, "nix-store --import"},
		{[]string{"sudo", "-n", "--", "nix-env", "-p", "/nix/var/nix/profiles/system", "--set", "/nix/store/x"},
			"sudo -n -- nix-env -p /nix/var/nix/profiles/system --set /nix/store/x"},
		{[]string{"printf", "%s\n", ""}, "printf '%s\n' ''"},
		{[]string{"FOO=bar", "FOO=bar"}, "'FOO=bar' FOO=bar"}, // not an assignment in command position
		{[]string{"if", "if"}, "'if' if"},                     // not a reserved word in command position
		{[]string{"!", "x"}, "'!' x"},
	}
	for _, tt := range tests {
		got, err := Join(tt.argv...)
		if err != nil {
			t.Errorf("Join(%q): %v", tt.argv, err)
			continue
		}
		if got != tt.want {
			t.Errorf("Join(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

func TestJoinErrors(t *testing.T) {
	if _, err := Join(); !errors.Is(err, ErrEmpty) {
		t.Errorf("Join() err = %v, want ErrEmpty", err)
	}
	if _, err := Join([]string{}...); !errors.Is(err, ErrEmpty) {
		t.Errorf("Join([]) err = %v, want ErrEmpty", err)
	}
	_, err := Join("echo", "a\x00b")
	if err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("Join with NUL: err = %v, want NUL error", err)
	}
}

// TestJoinCommandPosition runs joined commands whose first word is a
// reserved word or looks like an assignment: they must run the program of
// that name.
func TestJoinCommandPosition(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"if", "FOO=bar", "!", "a b", "time"} {
		script := "#!/bin/sh\nprintf '%s|' \"$(basename \"$0\")\" \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		joined, err := Join(name, "x y", "$z")
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shells(t) {
			cmd := exec.Command(sh, "-c", joined)
			cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s -c %q: %v: %s", sh, joined, err, out)
				continue
			}
			if want := name + "|x y|$z|"; string(out) != want {
				t.Errorf("%s -c %q printed %q, want %q", sh, joined, out, want)
			}
		}
	}
}

func shells(t testing.TB) []string {
	var out []string
	for _, sh := range []string{"/bin/sh", "bash", "zsh"} {
		if p, err := exec.LookPath(sh); err == nil {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Skip("no shell found")
	}
	return out
}

var hostile = []string{
	"", " ", "  ", "\t", "\n", "\r\n", "'", "''", "\"", `\`, `\'`, `'\''`,
	"$(id)", "`id`", "$HOME", "${HOME}", "${HOME:-x}", "$'\\n'", "$1", "$@", "$*", "$$", "$?",
	";", "a;b", "a && b", "a || b", "a | b", "a & b", "(a)", "{a,b}", "{a..c}",
	"~", "~root", "~/x", "a~", "*", "?", "[a-z]", "/*", "**", "!", "!!", "!$", "#", "a #b",
	"-", "--", "-n", "-e", "--help", "-rf /", "=ls", "a=b", "PATH=/x",
	"héllo", "日本語", "\xff\xfe", "🙂", "\u00a0", "\x7f", "\x01\x02",
	"<", ">", ">>", "<<EOF", "2>&1", "%s", "%n", "\\n", "\\0",
	"it's a \"test\" of `things` and $(more) ${stuff}\nnext line",
}

func FuzzJoin(f *testing.F) {
	for i, a := range hostile {
		f.Add(a, hostile[(i+1)%len(hostile)], hostile[(i+7)%len(hostile)])
	}
	f.Add("echo", "hello", "world")
	shs := shells(f)
	f.Fuzz(func(t *testing.T, a, b, c string) {
		argv := []string{a, b, c}
		if len(a)+len(b)+len(c) > 32<<10 {
			t.Skip("longer than a command line may be") // E2BIG says nothing about quoting
		}
		joined, err := Join(argv...)
		if strings.ContainsRune(a+b+c, 0) {
			if err == nil {
				t.Fatalf("Join(%q) accepted a NUL byte", argv)
			}
			return
		}
		if err != nil {
			t.Fatalf("Join(%q): %v", argv, err)
		}
		for _, sh := range shs {
			cmd := exec.Command(sh, "-c", `printf "%s\0" `+joined)
			cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent", "LC_ALL=C"}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s -c %q: %v (stderr %q)", sh, joined, err, stderr.String())
			}
			got := strings.Split(string(out), "\x00")
			if len(got) == 0 || got[len(got)-1] != "" {
				t.Fatalf("%s: output %q does not end in NUL", sh, out)
			}
			got = got[:len(got)-1]
			if len(got) != len(argv) {
				t.Fatalf("%s -c %q: got %d words %q, want %q", sh, joined, len(got), got, argv)
			}
			for i := range argv {
				if got[i] != argv[i] {
					t.Fatalf("%s -c %q: word %d = %q, want %q", sh, joined, i, got[i], argv[i])
				}
			}
		}
	})
}

func TestQuoteBareOnlySafe(t *testing.T) {
	// Bare words must consist of safe ASCII only.
	for _, s := range hostile {
		q := Quote(s)
		if q == s && (!utf8.ValidString(s) || strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()[]{}*?~#!")) {
			t.Errorf("Quote(%q) left an unsafe word bare", s)
		}
	}
}
