package nixenc

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// gen generates random encodable Starlark values with hostile contents.
type gen struct {
	r        *rand.Rand
	nixers   bool // include rawNix values (only meaningful when nix evaluates them)
	invalid  bool // include invalid UTF-8 in strings
	maxDepth int
}

// Fragments that are interesting for Nix's string lexer.
var strFragments = []string{
	`"`, `\`, "${", "$${", "$$${", "$", "$$", "''", "'''", "''$", "''\\", "''${", `\${`, `\\`, `\"`, `\$`,
	"$\"", "$\\", "${x}", `${ "a" }`, "{", "}", "$}", "{$",
	"\n", "\r", "\r\n", "\n\r", "\t", " ", "#", "/*", "*/", ":", "/", ".", "-", "'", "~",
	"a", "Z", "0", "x", "or", "if", "in", "rec", "true", "null", "__sub",
	"é", "日本", "🚀", "\u2028", "\u2029", "\ufeff", "e\u0301", "\U0010FFFF", "\u00a0",
	"\x01", "\x1b", "\x1f", "\x7f", "\u0080", "\u009f",
}

var invalidUTF8 = []string{"\xff", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x80", "\xe2\x82"}

var keyPool = []string{
	"a", "b", "_x", "a-b'", "x86_64-linux", "__curPos", "__overrides", "true", "null", "if", "or", "in",
	"rec", "inherit", "then", "let", "with", "assert", "else", "imports", "config", "", "1", "a.b", "a b",
	"-", "'", "${x}", "$", "é",
}

func (g *gen) str() string {
	var sb strings.Builder
	n := g.r.IntN(9)
	for i := 0; i < n; i++ {
		switch x := g.r.IntN(20); {
		case x < 14:
			sb.WriteString(strFragments[g.r.IntN(len(strFragments))])
		case x < 17:
			sb.WriteByte(byte(0x20 + g.r.IntN(0x5f))) // printable ASCII
		case x < 19:
			var r rune
			for {
				r = rune(1 + g.r.IntN(utf8.MaxRune))
				if utf8.ValidRune(r) {
					break
				}
			}
			sb.WriteRune(r)
		default:
			if g.invalid {
				sb.WriteString(invalidUTF8[g.r.IntN(len(invalidUTF8))])
			} else {
				sb.WriteByte(byte(1 + g.r.IntN(0x1f))) // control character
			}
		}
	}
	if g.r.IntN(5) == 0 {
		// Endings that stress the closing quote.
		sb.WriteString([]string{"$", `\`, `$\`, "$$", "''", `\$`}[g.r.IntN(6)])
	}
	return sb.String()
}

func (g *gen) key() string {
	if g.r.IntN(3) == 0 {
		return keyPool[g.r.IntN(len(keyPool))]
	}
	return g.str()
}

func (g *gen) int() int64 {
	switch g.r.IntN(8) {
	case 0:
		return math.MaxInt64
	case 1:
		return math.MinInt64
	case 2:
		return math.MinInt64 + int64(g.r.IntN(3))
	case 3:
		return int64(g.r.Uint64())
	case 4:
		s := int64(1) << g.r.IntN(63)
		return s*int64(1-2*g.r.IntN(2)) + int64(g.r.IntN(3)-1)
	default:
		return int64(g.r.IntN(2001) - 1000)
	}
}

var specialFloats = []float64{
	0, math.Copysign(0, -1), 1, -1, 0.1, -0.1, 0.5, 1.5, 100, 1e20, 1e21, 1e22, 1e-5, 1e-6, 1e-7,
	1 << 53, 1<<53 + 2, 123456789.125, math.MaxFloat64, -math.MaxFloat64, 0x1p-1022, -0x1p-1022,
	math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, 0x1p-1022 - math.SmallestNonzeroFloat64,
	1e-310, 3.14159, math.Pi, math.E, 1e300, 1e-300, 2.5e-8, 9007199254740993,
}

func (g *gen) float() float64 {
	switch g.r.IntN(4) {
	case 0:
		return specialFloats[g.r.IntN(len(specialFloats))]
	case 1:
		return float64(g.r.IntN(200001)-100000) / 100
	case 2:
		return g.r.NormFloat64() * math.Pow(10, float64(g.r.IntN(60)-30))
	default:
		for {
			f := math.Float64frombits(g.r.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f
			}
		}
	}
}

var nixerPool = []rawNix{
	{expr: "builtins.add 1 2", val: int64(3)},
	{expr: `"x" + "y"`, val: "xy"},
	{expr: "-7", val: int64(-7)},
	{expr: "let a = 1; in [ a a ]", val: []any{int64(1), int64(1)}},
	{expr: "{ a.b = true; }", val: map[string]any{"a": map[string]any{"b": true}}},
	{expr: "1 # comment", val: int64(1)},
	{expr: "builtins.toString 5", val: "5"},
	{expr: "if true then null else 1", val: nil},
	{expr: "rec { a = 1; b = a; }", val: map[string]any{"a": int64(1), "b": int64(1)}},
}

func (g *gen) scalar() starlark.Value {
	switch g.r.IntN(8) {
	case 0:
		return starlark.None
	case 1:
		return starlark.Bool(g.r.IntN(2) == 0)
	case 2, 3:
		return starlark.MakeInt64(g.int())
	case 4:
		return starlark.Float(g.float())
	default:
		if g.nixers && g.r.IntN(8) == 0 {
			return nixerPool[g.r.IntN(len(nixerPool))]
		}
		return starlark.String(g.str())
	}
}

func (g *gen) value(depth int) starlark.Value {
	if depth >= g.maxDepth || g.r.IntN(10) < 4 {
		return g.scalar()
	}
	n := g.r.IntN(6)
	switch g.r.IntN(4) {
	case 0:
		l := make([]starlark.Value, n)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return starlark.NewList(l)
	case 1:
		t := make(starlark.Tuple, n)
		for i := range t {
			t[i] = g.value(depth + 1)
		}
		return t
	case 2:
		d := starlark.NewDict(n)
		for i := 0; i < n; i++ {
			_ = d.SetKey(starlark.String(g.key()), g.value(depth+1))
		}
		return d
	default:
		m := starlark.StringDict{}
		for i := 0; i < n; i++ {
			m[g.key()] = g.value(depth + 1)
		}
		return starlarkstruct.FromStringDict(starlarkstruct.Default, m)
	}
}

// TestEncodeRandomParsesBack checks, without nix, that random values encode
// to atomic expressions that the Go model of Nix's parser evaluates back to
// exactly the same data.
func TestEncodeRandomParsesBack(t *testing.T) {
	g := &gen{r: rand.New(rand.NewPCG(1, 2)), invalid: true, maxDepth: 5}
	n := 5000
	if testing.Short() {
		n = 500
	}
	for i := 0; i < n; i++ {
		v := g.value(0)
		out, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode(%s): %v", v, err)
		}
		checkParsesBack(t, v, out)
		if strings.ContainsAny(out, "\n\r") {
			t.Errorf("Encode(%s) = %q contains a raw line break", v, out)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}
