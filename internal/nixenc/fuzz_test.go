package nixenc

import (
	"bytes"
	gojson "encoding/json"
	"errors"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.starlark.net/starlark"
)

var nixIdentRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_'-]*$`)

var stringSeeds = []string{
	"", "a", `"`, `\`, "$", "${", "$${", "$$${", `\${`, `\\${`, "${x}", "$\\{", "a$", "$$", "''", "'''${",
	"''$", "''\\", "\n", "\r", "\r\n", "\t", "\x00", "a\x00b", "\x7f", "\xff", "日本🚀", "\u2028",
	"if", "or", "__curPos", "a-b'", "1a", "$\"", "${\"a\"}", "\\\n", "$\r", "$\\\r",
}

// FuzzString checks String and AttrName without nix: the literal decodes
// (with a Go model of Nix's string lexer) back to the input, contains no
// unescaped ${ and no raw line breaks or tabs.
func FuzzString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lit, err := String(s)
		name, nameErr := AttrName(s)
		enc, encErr := Encode(starlark.String(s))
		if strings.IndexByte(s, 0) >= 0 {
			if err == nil || !errors.Is(err, ErrNUL) || lit != "" {
				t.Fatalf("String(%q) = %q, %v; want ErrNUL", s, lit, err)
			}
			if nameErr == nil || !errors.Is(nameErr, ErrNUL) {
				t.Fatalf("AttrName(%q) = %q, %v; want ErrNUL", s, name, nameErr)
			}
			var e *Error
			if !errors.As(encErr, &e) || !errors.Is(encErr, ErrNUL) || e.Path != "value" || e.Type != "string" {
				t.Fatalf("Encode(%q) error = %v; want *Error wrapping ErrNUL", s, encErr)
			}
			return
		}
		if err != nil || nameErr != nil || encErr != nil {
			t.Fatalf("%q: String: %v, AttrName: %v, Encode: %v", s, err, nameErr, encErr)
		}

		if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
			t.Fatalf("String(%q) = %s: not a quoted literal", s, lit)
		}
		if strings.ContainsAny(lit, "\n\r\t") {
			t.Fatalf("String(%q) = %q contains a raw newline, CR or tab", s, lit)
		}
		// Every ${ must be escaped: preceded by an odd run of backslashes.
		for i := strings.Index(lit, "${"); i >= 0; {
			n := 0
			for j := i - 1; j >= 0 && lit[j] == '\\'; j-- {
				n++
			}
			if n%2 == 0 {
				t.Fatalf("String(%q) = %s has an unescaped ${ at %d", s, lit, i)
			}
			next := strings.Index(lit[i+1:], "${")
			if next < 0 {
				break
			}
			i += 1 + next
		}
		dec, n, err := decodeNixString(lit)
		if err != nil || n != len(lit) || dec != s {
			t.Fatalf("String(%q) = %s decodes to %q (%d of %d bytes), %v", s, lit, dec, n, len(lit), err)
		}
		if enc != lit {
			t.Fatalf("Encode(%q) = %s, String = %s", s, enc, lit)
		}

		if nixIdentRE.MatchString(s) && !nixKeywords[s] {
			if name != s {
				t.Fatalf("AttrName(%q) = %s, want bare", s, name)
			}
		} else if name != lit {
			t.Fatalf("AttrName(%q) = %s, want %s", s, name, lit)
		}

		// As an attribute name and value inside a set, in a list.
		v := starlark.NewList([]starlark.Value{dict(s, starlark.String(s+"$"))})
		out, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		checkParsesBack(t, v, out)
	})
}

// fromJSON converts decoded JSON (with json.Number) to a Starlark value and
// reports whether Encode must reject it. ok is false for inputs to skip.
func fromJSON(x any, depth int) (v starlark.Value, wantErr, ok bool) {
	switch x := x.(type) {
	case nil:
		return starlark.None, false, true
	case bool:
		return starlark.Bool(x), false, true
	case gojson.Number:
		if strings.ContainsAny(string(x), ".eE") {
			f, err := strconv.ParseFloat(string(x), 64)
			if err != nil {
				return nil, false, false // out of float range
			}
			return starlark.Float(f), false, true
		}
		b, ok := new(big.Int).SetString(string(x), 10)
		if !ok {
			return nil, false, false
		}
		return starlark.MakeBigInt(b), !b.IsInt64(), true
	case string:
		return starlark.String(x), strings.IndexByte(x, 0) >= 0, true
	case []any:
		elems := make([]starlark.Value, len(x))
		wantErr := depth >= MaxDepth
		for i, e := range x {
			ev, werr, ok := fromJSON(e, depth+1)
			if !ok {
				return nil, false, false
			}
			elems[i], wantErr = ev, wantErr || werr
		}
		if len(x)%2 == 1 {
			return starlark.Tuple(elems), wantErr, true
		}
		return starlark.NewList(elems), wantErr, true
	case map[string]any:
		d := starlark.NewDict(len(x))
		wantErr := depth >= MaxDepth
		for k, e := range x {
			ev, werr, ok := fromJSON(e, depth+1)
			if !ok {
				return nil, false, false
			}
			wantErr = wantErr || werr || strings.IndexByte(k, 0) >= 0
			_ = d.SetKey(starlark.String(k), ev)
		}
		return d, wantErr, true
	}
	return nil, false, false
}

// FuzzEncode checks Encode on values decoded from JSON input: either the
// output parses (with the Go model of Nix's parser) back to exactly the same
// data, or Encode returns an *Error when it must.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{
		`null`, `true`, `[]`, `{}`, `0`, `-0`, `-0.0`, `1.0`, `1e21`, `1E-7`, `5e-324`, `-2.2250738585072011e-308`,
		`1.7976931348623157e308`, `9223372036854775807`, `-9223372036854775808`, `9223372036854775808`,
		`[1, -1, 1.5, -2.5, [-3], {"a": -4}]`,
		`{"a": {"${x}": "$${y}", "if": ["''", "\\${", "a$"]}, "": [true, false, null], "a b": {"or": 1}}`,
		`"\u0000"`, `{"\u0000": 1}`, `["\r\n", "\t", "\"", "\\", "$", "\u007f", "\u2028"]`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := gojson.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var x any
		if err := d.Decode(&x); err != nil {
			return
		}
		v, wantErr, ok := fromJSON(x, 0)
		if !ok {
			return
		}
		out, err := Encode(v)
		if wantErr {
			var e *Error
			if !errors.As(err, &e) || out != "" {
				t.Fatalf("Encode(%s) = %q, %v; want *Error", v, out, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode(%s): %v", v, err)
		}
		checkParsesBack(t, v, out)
	})
}
