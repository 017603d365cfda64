package nixenc

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// rawNix is a test Nixer: a raw Nix expression together with the value it
// evaluates to (nil, bool, int64, string, []any, map[string]any), which is
// also its JSON encoding for Starlark's json.encode.
type rawNix struct {
	expr string
	val  any
	err  error
}

var _ Nixer = rawNix{}

func (r rawNix) String() string               { return "nix(" + r.expr + ")" }
func (r rawNix) Type() string                 { return "nix_expr" }
func (r rawNix) Freeze()                      {}
func (r rawNix) Truth() starlark.Bool         { return true }
func (r rawNix) Hash() (uint32, error)        { return 0, errors.New("unhashable") }
func (r rawNix) NixExpr() (string, error)     { return r.expr, r.err }
func (r rawNix) MarshalJSON() ([]byte, error) { return json.Marshal(r.val) }

// eval evaluates a Starlark expression (after running setup statements).
func eval(t testing.TB, setup, expr string) starlark.Value {
	t.Helper()
	predeclared := starlark.StringDict{
		"struct": starlark.NewBuiltin("struct", starlarkstruct.Make),
	}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true}
	src := setup + "\n__result__ = " + expr + "\n"
	globals, err := starlark.ExecFileOptions(opts, &starlark.Thread{}, "test.star", src, predeclared)
	if err != nil {
		t.Fatalf("starlark: %v", err)
	}
	return globals["__result__"]
}

// toGo converts an encodable Starlark value into the Go model that parseNix
// produces.
func toGo(v starlark.Value) any {
	switch v := v.(type) {
	case rawNix:
		return v.val
	case starlark.NoneType:
		return nil
	case starlark.Bool:
		return bool(v)
	case starlark.Int:
		n, _ := v.Int64()
		return n
	case starlark.Float:
		return float64(v)
	case starlark.String:
		return string(v)
	case *starlark.List:
		l := []any{}
		for x := range v.Elements() {
			l = append(l, toGo(x))
		}
		return l
	case starlark.Tuple:
		l := []any{}
		for _, x := range v {
			l = append(l, toGo(x))
		}
		return l
	case *starlark.Dict:
		m := map[string]any{}
		for k, x := range v.Entries() {
			m[string(k.(starlark.String))] = toGo(x)
		}
		return m
	case *starlarkstruct.Struct:
		m := map[string]any{}
		for k, x := range v.Entries() {
			m[k] = toGo(x)
		}
		return m
	}
	panic(fmt.Sprintf("toGo: unexpected %T", v))
}

// sameValue compares two Go model values exactly (floats bit for bit, so
// -0.0 differs from 0.0; int and float differ).
func sameValue(a, b any) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool, int64, string:
		return a == b
	case float64:
		bf, ok := b.(float64)
		return ok && math.Float64bits(a) == math.Float64bits(bf)
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !sameValue(a[i], bl[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok || !sameValue(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// checkParsesBack checks that out, the encoding of v, is an atomic Nix
// expression that evaluates exactly to v.
func checkParsesBack(t testing.TB, v starlark.Value, out string) {
	t.Helper()
	got, err := parseNix(out, true)
	if err != nil {
		t.Errorf("Encode(%s) = %s: does not parse: %v", v, out, err)
		return
	}
	if want := toGo(v); !sameValue(got, want) {
		t.Errorf("Encode(%s) = %s: parses to %#v, want %#v", v, out, got, want)
	}
}

func bigInt(s string) starlark.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return starlark.MakeBigInt(b)
}

func dict(kv ...any) *starlark.Dict {
	d := starlark.NewDict(len(kv) / 2)
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		var key starlark.Value
		if s, ok := k.(string); ok {
			key = starlark.String(s)
		} else {
			key = k.(starlark.Value)
		}
		if err := d.SetKey(key, v.(starlark.Value)); err != nil {
			panic(err)
		}
	}
	return d
}

func list(vs ...starlark.Value) *starlark.List { return starlark.NewList(vs) }

func strct(kv ...any) *starlarkstruct.Struct {
	d := starlark.StringDict{}
	for i := 0; i < len(kv); i += 2 {
		d[kv[i].(string)] = kv[i+1].(starlark.Value)
	}
	return starlarkstruct.FromStringDict(starlarkstruct.Default, d)
}

type encodeCase struct {
	name string
	v    starlark.Value
	want string
}

// encodeCases are the successful table cases; they are also evaluated by
// nix in TestEncodeTableWithNix.
func encodeCases() []encodeCase {
	S := func(s string) starlark.Value { return starlark.String(s) }
	I := func(n int64) starlark.Value { return starlark.MakeInt64(n) }
	F := func(f float64) starlark.Value { return starlark.Float(f) }
	return []encodeCase{
		// None, bool
		{"none", starlark.None, `null`},
		{"true", starlark.True, `true`},
		{"false", starlark.False, `false`},

		// int
		{"int zero", I(0), `0`},
		{"int", I(42), `42`},
		{"int negative", I(-1), `(-1)`},
		{"int max", I(math.MaxInt64), `9223372036854775807`},
		{"int min", I(math.MinInt64), `(-9223372036854775807 - 1)`},
		{"int min+1", I(math.MinInt64 + 1), `(-9223372036854775807)`},
		{"int from big", bigInt("9223372036854775807"), `9223372036854775807`},

		// float
		{"float one", F(1), `1.0`},
		{"float zero", F(0), `0.0`},
		{"float negative zero", F(math.Copysign(0, -1)), `(-1.0 * 0.0)`},
		{"float fraction", F(0.1), `0.1`},
		{"float negative", F(-2.5), `(-2.5)`},
		{"float integral", F(123456789), `123456789.0`},
		{"float 2^53", F(1 << 53), `9007199254740992.0`},
		{"float 1e20", F(1e20), `100000000000000000000.0`},
		{"float 1e21", F(1e21), `1.0e21`},
		{"float 1.5e300", F(1.5e300), `1.5e300`},
		{"float 1e-5", F(1e-5), `0.00001`},
		{"float 1e-6", F(1e-6), `1.0e-6`},
		{"float 1.5e-7", F(1.5e-7), `1.5e-7`},
		{"float negative exp", F(-1.25e-100), `(-1.25e-100)`},
		{"float max", F(math.MaxFloat64), `1.7976931348623157e308`},
		{"float min normal", F(0x1p-1022), `2.2250738585072014e-308`},
		{"float smallest subnormal", F(math.SmallestNonzeroFloat64), `(9.113902524445497e-305 * 5.421010862427522e-20)`},
		{"float largest subnormal", F(0x1p-1022 - math.SmallestNonzeroFloat64), `(4.1045368012983753e-289 * 5.421010862427522e-20)`},
		{"float negative subnormal", F(-1e-310), `(-1.8446744073709495e-291 * 5.421010862427522e-20)`},

		// string
		{"string empty", S(""), `""`},
		{"string plain", S("hello world"), `"hello world"`},
		{"string quote", S(`a"b`), `"a\"b"`},
		{"string backslash", S(`a\b`), `"a\\b"`},
		{"string interpolation", S("${x}"), `"\${x}"`},
		{"string double dollar", S("$${x}"), `"$\${x}"`},
		{"string dollar", S("$"), `"$"`},
		{"string trailing dollar", S("a$"), `"a$"`},
		{"string dollars", S("$$"), `"$$"`},
		{"string dollar quote", S(`$"`), `"$\""`},
		{"string dollar backslash", S(`$\`), `"$\\"`},
		{"string escaped interpolation", S(`\${x}`), `"\\\${x}"`},
		{"string indented-string syntax", S("''${x}'''$"), `"''\${x}'''$"`},
		{"string braces", S("{}$}{"), `"{}$}{"`},
		{"string control", S("a\nb\rc\r\nd\te"), `"a\nb\rc\r\nd\te"`},
		{"string other control", S("\x01\x1b[0m\x7f"), "\"\x01\x1b[0m\x7f\""},
		{"string unicode", S("héllo 日本 🚀 \u2028\ufeff"), "\"héllo 日本 🚀 \u2028\ufeff\""},
		{"string invalid utf8", S("\xff\xc3("), "\"\xff\xc3(\""},
		{"string comment-like", S("# /* */"), `"# /* */"`},

		// list, tuple
		{"list empty", list(), `[ ]`},
		{"list", list(I(1), I(-1), S("a"), F(-0.5), starlark.None), `[ 1 (-1) "a" (-0.5) null ]`},
		{"list min int", list(I(math.MinInt64)), `[ (-9223372036854775807 - 1) ]`},
		{"list nested", list(list(), list(list(I(1)))), `[ [ ] [ [ 1 ] ] ]`},
		{"tuple empty", starlark.Tuple{}, `[ ]`},
		{"tuple", starlark.Tuple{F(1), starlark.True}, `[ 1.0 true ]`},
		{"list shared not cyclic", func() starlark.Value { x := list(I(1)); return list(x, x) }(), `[ [ 1 ] [ 1 ] ]`},

		// dict
		{"dict empty", dict(), `{ }`},
		{"dict sorted", dict("b", I(1), "a", I(2), "B", I(3)), `{ B = 3; a = 2; b = 1; }`},
		{"dict negative value", dict("x", I(-3), "y", F(-1)), `{ x = -3; y = -1.0; }`},
		{"dict identifiers", dict("_x", I(1), "a-b'", I(2), "A9", I(3), "__curPos", I(4)), `{ A9 = 3; __curPos = 4; _x = 1; a-b' = 2; }`},
		{"dict quoted keys", dict("", I(0), "a b", I(1), "1a", I(2), "-a", I(3), "a.b", I(4), "${x}", I(5), "é", I(6), "'a", I(7)),
			`{ "" = 0; "\${x}" = 5; "'a" = 7; "-a" = 3; "1a" = 2; "a b" = 1; "a.b" = 4; "é" = 6; }`},
		{"dict keywords", dict("if", I(1), "then", I(2), "else", I(3), "assert", I(4), "with", I(5), "let", I(6), "in", I(7), "rec", I(8), "inherit", I(9), "or", I(10), "true", I(11), "null", I(12)),
			`{ "assert" = 4; "else" = 3; "if" = 1; "in" = 7; "inherit" = 9; "let" = 6; null = 12; "or" = 10; "rec" = 8; "then" = 2; true = 11; "with" = 5; }`},
		{"dict nested", dict("a", dict("b", list(dict()))), `{ a = { b = [ { } ]; }; }`},

		// struct
		{"struct empty", strct(), `{ }`},
		{"struct", strct("name", S("web"), "port", I(80), "tags", starlark.Tuple{S("x")}), `{ name = "web"; port = 80; tags = [ "x" ]; }`},
		{"struct odd field names", strct("a b", I(1), "if", I(2)), `{ "a b" = 1; "if" = 2; }`},

		// Nixer
		{"nixer", rawNix{expr: "builtins.add 1 2", val: int64(3)}, `(builtins.add 1 2)`},
		{"nixer in list", list(rawNix{expr: "builtins.add 1 2", val: int64(3)}, rawNix{expr: "-4", val: int64(-4)}), `[ (builtins.add 1 2) (-4) ]`},
		{"nixer in dict", dict("a", rawNix{expr: `"x" + "y"`, val: "xy"}), `{ a = ("x" + "y"); }`},
		{"nixer with comment", list(rawNix{expr: "1 # one", val: int64(1)}), "[ (1 # one\n) ]"},
		{"nixer let", rawNix{expr: "let x = 1; in { y = x; }", val: map[string]any{"y": int64(1)}}, `(let x = 1; in { y = x; })`},
	}
}

func TestEncode(t *testing.T) {
	for _, c := range encodeCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := Encode(c.v)
			if err != nil {
				t.Fatalf("Encode(%s): %v", c.v, err)
			}
			if got != c.want {
				t.Errorf("Encode(%s)\n got %s\nwant %s", c.v, got, c.want)
			}
			// Everything without foreign Nix code must parse back exactly.
			if !containsNixer(c.v) {
				checkParsesBack(t, c.v, got)
			}
			// Deterministic.
			if again, _ := Encode(c.v); again != got {
				t.Errorf("Encode not deterministic: %s vs %s", got, again)
			}
		})
	}
}

func containsNixer(v starlark.Value) bool {
	switch v := v.(type) {
	case rawNix:
		return true
	case *starlark.List:
		for x := range v.Elements() {
			if containsNixer(x) {
				return true
			}
		}
	case starlark.Tuple:
		for _, x := range v {
			if containsNixer(x) {
				return true
			}
		}
	case *starlark.Dict:
		for _, x := range v.Entries() {
			if containsNixer(x) {
				return true
			}
		}
	case *starlarkstruct.Struct:
		for _, x := range v.Entries() {
			if containsNixer(x) {
				return true
			}
		}
	}
	return false
}

func TestEncodeErrors(t *testing.T) {
	deep := func(n int) starlark.Value {
		var v starlark.Value = starlark.None
		for i := 0; i < n; i++ {
			v = list(v)
		}
		return v
	}
	fn := eval(t, "def f(x):\n  return x", "f")
	hostile := eval(t, "def f(): pass", `{"hosts": [1, 2, struct(vars = {"x": f})]}`)
	errBoom := errors.New("boom")

	cases := []struct {
		name     string
		v        starlark.Value
		path     string // full Error.Path
		typ      string // Error.Type
		msg      string // substring of the message
		wantErr  error  // if set, errors.Is must hold
		rootName string // EncodeNamed root; default Encode
	}{
		{name: "nil", v: nil, path: "value", typ: "nil", msg: "nil Go value"},
		{name: "int too big", v: bigInt("9223372036854775808"), path: "value", typ: "int", msg: "integer 9223372036854775808 does not fit in Nix's 64-bit signed integers"},
		{name: "int too small", v: bigInt("-9223372036854775809"), path: "value", typ: "int", msg: "does not fit"},
		{name: "int truncated in message", v: bigInt(strings.Repeat("9", 100)), path: "value", typ: "int", msg: "integer " + strings.Repeat("9", 57) + "... does not fit"},
		{name: "int huge", v: list(bigInt("123456789012345678901234567890")), path: "value[0]", typ: "int", msg: "does not fit"},
		{name: "float nan", v: starlark.Float(math.NaN()), path: "value", typ: "float", msg: "float nan cannot be encoded to Nix (Nix floats must be finite)"},
		{name: "float +inf", v: dict("x", starlark.Float(math.Inf(1))), path: `value["x"]`, typ: "float", msg: "float +inf cannot be encoded"},
		{name: "float -inf", v: starlark.Tuple{starlark.Float(math.Inf(-1))}, path: `value[0]`, typ: "float", msg: "float -inf cannot be encoded"},
		{name: "string NUL", v: starlark.String("a\x00b"), path: "value", typ: "string", msg: "string: Nix strings cannot contain NUL bytes (NUL at byte offset 1)", wantErr: ErrNUL},
		{name: "bytes", v: starlark.Bytes("abc"), path: "value", typ: "bytes", msg: "bytes values cannot be encoded to Nix"},
		{name: "builtin function", v: list(starlark.Universe["len"]), path: "value[0]", typ: "builtin_function_or_method", msg: "function values cannot be encoded to Nix (got <built-in function len>)"},
		{name: "function", v: dict("f", fn), path: `value["f"]`, typ: "function", msg: "function values cannot be encoded to Nix (got <function f>)"},
		{name: "set", v: eval(t, "", "set([1, 2])"), path: "value", typ: "set", msg: "set values cannot be encoded to Nix"},
		{name: "range", v: eval(t, "", "range(3)"), path: "value", typ: "range", msg: "range values cannot be encoded to Nix"},
		{name: "module", v: &starlarkstruct.Module{Name: "m", Members: starlark.StringDict{}}, path: "value", typ: "module", msg: "module values cannot be encoded to Nix"},
		{name: "dict int key", v: dict(starlark.MakeInt(1), starlark.None), path: "value", typ: "dict", msg: "dict key 1 has type int, but Nix attribute names must be strings"},
		{name: "dict tuple key", v: dict("a", dict(starlark.Tuple{starlark.None}, starlark.None)), path: `value["a"]`, typ: "dict", msg: "dict key (None,) has type tuple"},
		{name: "dict key NUL", v: dict("a\x00", starlark.None), path: "value", typ: "dict", msg: `dict key "a\x00": Nix strings cannot contain NUL bytes`, wantErr: ErrNUL},
		{name: "struct field NUL", v: strct("a\x00", starlark.None), path: "value", typ: "struct", msg: `struct field name "a\x00": Nix strings cannot contain NUL`, wantErr: ErrNUL},
		{name: "nixer error", v: dict("p", list(rawNix{err: errBoom})), path: `value["p"][0]`, typ: "nix_expr", msg: "NixExpr: boom", wantErr: errBoom},
		{name: "nixer empty", v: rawNix{expr: " \n"}, path: "value", typ: "nix_expr", msg: "NixExpr returned an empty expression"},
		{name: "nixer NUL", v: rawNix{expr: "1\x00"}, path: "value", typ: "nix_expr", msg: "NixExpr: Nix strings cannot contain NUL", wantErr: ErrNUL},
		{name: "self list", v: eval(t, "x = [1]\nx.append(x)", "x"), path: "value[1]", typ: "list", msg: "cyclic reference: this list contains itself"},
		{name: "self dict", v: eval(t, "x = {}\nx['me'] = x", "x"), path: `value["me"]`, typ: "dict", msg: "cyclic reference: this dict contains itself"},
		{name: "indirect cycle", v: eval(t, "x = []\ny = {'l': (x,)}\nx.append(struct(y = y))", "y"), path: `value["l"][0][0].y`, typ: "dict", msg: "cyclic reference"},
		{name: "too deep", v: deep(MaxDepth + 1), path: "value" + strings.Repeat("[0]", MaxDepth), typ: "list", msg: fmt.Sprintf("value nested more than %d levels deep", MaxDepth)},
		{name: "named root", v: hostile, rootName: "special_args", path: `special_args["hosts"][2].vars["x"]`, typ: "function", msg: "function values cannot be encoded to Nix (got <function f>)"},
		{name: "struct field path", v: strct("a b", list(starlark.Bytes("x"))), path: `value."a b"[0]`, typ: "bytes", msg: "bytes values"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out string
			var err error
			if c.rootName != "" {
				out, err = EncodeNamed(c.rootName, c.v)
			} else {
				out, err = Encode(c.v)
			}
			if err == nil {
				t.Fatalf("Encode succeeded with %s, want error", out)
			}
			if out != "" {
				t.Errorf("Encode returned output %q with error", out)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if e.Path != c.path {
				t.Errorf("Path = %s, want %s", e.Path, c.path)
			}
			if e.Type != c.typ {
				t.Errorf("Type = %s, want %s", e.Type, c.typ)
			}
			if !strings.HasPrefix(err.Error(), c.path+": ") || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error = %q, want %q + %q", err, c.path+": ", c.msg)
			}
			if c.wantErr != nil && !errors.Is(err, c.wantErr) {
				t.Errorf("errors.Is(%v, %v) = false", err, c.wantErr)
			}
		})
	}

	// The exact message from the brief.
	_, err := EncodeNamed("special_args", hostile)
	if want := `special_args["hosts"][2].vars["x"]: function values cannot be encoded to Nix (got <function f>)`; err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestEncodeDepthLimit(t *testing.T) {
	var v starlark.Value = starlark.MakeInt(1)
	for i := 0; i < MaxDepth; i++ {
		if i%3 == 0 {
			v = dict("k", v)
		} else if i%3 == 1 {
			v = starlark.Tuple{v}
		} else {
			v = strct("f", v)
		}
	}
	out, err := Encode(v)
	if err != nil {
		t.Fatalf("depth %d: %v", MaxDepth, err)
	}
	checkParsesBack(t, v, out)
	if _, err := Encode(list(v)); err == nil {
		t.Fatalf("depth %d: no error", MaxDepth+1)
	}
}

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`"`, `"\""`},
		{`\`, `"\\"`},
		{`\\`, `"\\\\"`},
		{"${", `"\${"`},
		{"$${", `"$\${"`},
		{"$$${", `"$$\${"`},
		{`\${`, `"\\\${"`},
		{"$", `"$"`},
		{"x$", `"x$"`},
		{"$\n", `"$\n"`},
		{"\r\n", `"\r\n"`},
		{"\t", `"\t"`},
		{"''", `"''"`},
		{"'''${", `"'''\${"`},
		{"$'{", `"$'{"`},
		{"{$", `"{$"`},
	}
	for _, c := range cases {
		got, err := String(c.in)
		if err != nil || got != c.want {
			t.Errorf("String(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
		if dec, n, err := decodeNixString(got); err != nil || dec != c.in || n != len(got) {
			t.Errorf("decode(%s) = %q, %d, %v; want %q", got, dec, n, err, c.in)
		}
	}
	for _, bad := range []string{"\x00", "a\x00", "\x00b", "${\x00}"} {
		if got, err := String(bad); err == nil || !errors.Is(err, ErrNUL) || got != "" {
			t.Errorf("String(%q) = %q, %v; want ErrNUL", bad, got, err)
		}
	}
}

func TestAttrName(t *testing.T) {
	cases := []struct{ in, want string }{
		{"a", "a"},
		{"Z", "Z"},
		{"_", "_"},
		{"foo_bar-baz'", "foo_bar-baz'"},
		{"x86_64-linux", "x86_64-linux"},
		{"__curPos", "__curPos"},
		{"true", "true"},
		{"null", "null"},
		{"", `""`},
		{"1a", `"1a"`},
		{"-a", `"-a"`},
		{"'a", `"'a"`},
		{"a.b", `"a.b"`},
		{"a b", `"a b"`},
		{"a/b", `"a/b"`},
		{"a:b", `"a:b"`},
		{"é", `"é"`},
		{"${x}", `"\${x}"`},
		{"if", `"if"`},
		{"then", `"then"`},
		{"else", `"else"`},
		{"assert", `"assert"`},
		{"with", `"with"`},
		{"let", `"let"`},
		{"in", `"in"`},
		{"rec", `"rec"`},
		{"inherit", `"inherit"`},
		{"or", `"or"`},
		{"If", "If"},
		{"in-", "in-"},
	}
	for _, c := range cases {
		got, err := AttrName(c.in)
		if err != nil || got != c.want {
			t.Errorf("AttrName(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
	if got, err := AttrName("a\x00"); err == nil || !errors.Is(err, ErrNUL) || got != "" {
		t.Errorf("AttrName with NUL = %q, %v; want ErrNUL", got, err)
	}
}
