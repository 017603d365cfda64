package nixenc

// Round-trip tests against a real nix: encode many values, evaluate them all
// in ONE `nix eval --json`, and compare with Starlark's json.encode.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	gojson "encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fleet-deploy/fleet/internal/lab/labtest"
	"github.com/fleet-deploy/fleet/internal/nixconf"
	"go.starlark.net/lib/json"
	"go.starlark.net/starlark"
)

// Every nix command here reads internal/nixconf's settings only.
func TestMain(m *testing.M) { os.Exit(nixconf.Isolated(m.Run)) }

// needNix returns the path of nix or skips the test loudly (then the
// encoder is not verified against a real Nix evaluator); with
// FLEET_REQUIRE_LAB=1 a missing nix is a failure instead (labtest.Skip).
func needNix(t *testing.T) string {
	t.Helper()
	labtest.RequireNix(t)
	nix, err := exec.LookPath("nix")
	if err != nil {
		t.Fatal(err)
	}
	return nix
}

// nixPrelude defines helpers evaluated next to the encoded values:
//
//	sig:  the structure of Nix types (builtins.typeOf) of a value, to check
//	      that floats stay floats and ints ints (nix eval --json prints 1.0
//	      as 1);
//	walk: sha256 of every string and attribute name in a value, in order
//	      (attribute names sorted), to check strings byte for byte
//	      (including invalid UTF-8 and control characters).
const nixPrelude = `let
  sig = v: let t = builtins.typeOf v; in
    if t == "list" then map sig v
    else if t == "set" then builtins.mapAttrs (n: sig) v
    else t;
  walk = v: let t = builtins.typeOf v; in
    if t == "string" then [ (builtins.hashString "sha256" v) ]
    else if t == "list" then builtins.concatMap walk v
    else if t == "set" then builtins.concatMap (n: [ (builtins.hashString "sha256" n) ] ++ walk v.${n}) (builtins.attrNames v)
    else [ ];
`

// goSig and goWalk compute sig and walk on the Go model of a value.
func goSig(v any) any {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "string"
	case []any:
		l := []any{}
		for _, x := range v {
			l = append(l, goSig(x))
		}
		return l
	case map[string]any:
		m := map[string]any{}
		for k, x := range v {
			m[k] = goSig(x)
		}
		return m
	}
	panic(fmt.Sprintf("goSig: %T", v))
}

func goWalk(v any) []any {
	hash := func(s string) any { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	switch v := v.(type) {
	case string:
		return []any{hash(v)}
	case []any:
		out := []any{}
		for _, x := range v {
			out = append(out, goWalk(x)...)
		}
		return out
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // byte order, like Nix's attrNames (strcmp)
		out := []any{}
		for _, k := range keys {
			out = append(out, hash(k))
			out = append(out, goWalk(v[k])...)
		}
		return out
	}
	return []any{}
}

// mantissaProbe returns a Nix expression that evaluates to the 53-bit
// integer mantissa of the encoded f, and that integer computed in Go. The
// float is scaled by two exact powers of two (split so that each stays a
// normal float) and floored, so any deviation of the parsed float from f,
// even by one ulp, changes the result. (nix eval --json prints floats with
// only 6 significant digits, so JSON alone cannot check floats exactly.)
func mantissaProbe(t testing.TB, f float64) (expr string, want int64) {
	frac, exp := math.Frexp(f)
	want = int64(frac * (1 << 53))
	k := 53 - exp
	k1, k2 := k/2, k-k/2
	enc := func(x float64) string {
		s, err := Encode(starlark.Float(x))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return fmt.Sprintf("(builtins.floor (%s * %s * %s))", enc(f), enc(math.Ldexp(1, k1)), enc(math.Ldexp(1, k2))), want
}

// starlarkJSON returns Starlark's json.encode(v), repaired (see
// fixStarlarkJSON).
func starlarkJSON(t testing.TB, v starlark.Value) string {
	out, err := starlark.Call(&starlark.Thread{}, json.Module.Members["encode"], starlark.Tuple{v}, nil)
	if err != nil {
		t.Fatalf("json.encode(%s): %v", v, err)
	}
	return fixStarlarkJSON(string(out.(starlark.String)))
}

// fixStarlarkJSON works around a go.starlark.net bug: json.encode quotes
// strings that contain only bytes 0x20-0x7f with strconv.Quote, which
// writes DEL (0x7f) as \x7f, an invalid JSON escape. Rewrite \xHH as \u00HH.
func fixStarlarkJSON(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if s[i+1] == 'x' && i+3 < len(s) {
				b.WriteString(`\u00` + s[i+2:i+4])
				i += 3
				continue
			}
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func decodeJSON(t testing.TB, data []byte) any {
	d := gojson.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decoding JSON %.200q: %v", data, err)
	}
	return v
}

// jsonEquiv compares decoded JSON from nix (a) with decoded JSON from
// Starlark (b). Integers must be equal exactly; floats numerically within
// the 6 significant digits that Nix 2.8 prints (and with the same sign for
// zeros).
func jsonEquiv(a, b any) bool {
	switch a := a.(type) {
	case nil, bool, string:
		return a == b
	case gojson.Number:
		bn, ok := b.(gojson.Number)
		if !ok {
			return false
		}
		isInt := func(n gojson.Number) bool { return !strings.ContainsAny(string(n), ".eE") }
		if isInt(a) && isInt(bn) {
			x, ok1 := new(big.Int).SetString(string(a), 10)
			y, ok2 := new(big.Int).SetString(string(bn), 10)
			return ok1 && ok2 && x.Cmp(y) == 0
		}
		x, err1 := strconv.ParseFloat(string(a), 64)
		y, err2 := strconv.ParseFloat(string(bn), 64)
		if err1 != nil || err2 != nil {
			return false
		}
		if x == 0 || y == 0 {
			return x == y && math.Signbit(x) == math.Signbit(y)
		}
		return math.Abs(x-y) <= 1e-5*math.Max(math.Abs(x), math.Abs(y))
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !jsonEquiv(a[i], bl[i]) {
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
			if bv, ok := bm[k]; !ok || !jsonEquiv(av, bv) {
				return false
			}
		}
		return true
	}
	return false
}

// normalize round-trips v through encoding/json so it compares with
// decoded JSON.
func normalize(t testing.TB, v any) any {
	data, err := gojson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return decodeJSON(t, data)
}

// checkWithNix encodes values (and mantissa probes for floats) into one Nix
// program, evaluates it with one nix eval (via --expr if viaExpr, else via a
// file, which avoids the 128 KiB limit on a single argument), and compares.
func checkWithNix(t *testing.T, values []starlark.Value, floats []float64, viaExpr bool) {
	nix := needNix(t)

	var prog strings.Builder
	prog.WriteString(nixPrelude)
	prog.WriteString("  vs = [\n")
	encoded := make([]string, len(values))
	for i, v := range values {
		out, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode(%s): %v", v, err)
		}
		encoded[i] = out
		prog.WriteString("    " + out + "\n")
	}
	prog.WriteString("  ];\n  ms = [\n")
	var wantMantissas []int64
	for _, f := range floats {
		if f == 0 {
			continue
		}
		expr, want := mantissaProbe(t, f)
		prog.WriteString("    " + expr + "\n")
		wantMantissas = append(wantMantissas, want)
	}
	prog.WriteString("  ];\nin { values = vs; types = map sig vs; hashes = map walk vs; mantissas = ms; }\n")

	args := []string{"eval", "--json"}
	if viaExpr {
		args = append(args, "--expr", prog.String())
	} else {
		file := filepath.Join(t.TempDir(), "roundtrip.nix")
		if err := os.WriteFile(file, []byte(prog.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--file", file)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nix, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		prefix := prog.String()
		if len(prefix) > 4000 {
			prefix = prefix[:4000] + "..."
		}
		t.Fatalf("nix eval failed: %v\nstderr:\n%s\nprogram:\n%s", err, stderr.String(), prefix)
	}
	t.Logf("nix eval of %d values and %d float probes (%d bytes of Nix) took %v",
		len(values), len(wantMantissas), prog.Len(), time.Since(start))

	var res struct {
		Values    []gojson.RawMessage
		Types     []gojson.RawMessage
		Hashes    []gojson.RawMessage
		Mantissas []gojson.Number
	}
	d := gojson.NewDecoder(&stdout)
	d.UseNumber()
	if err := d.Decode(&res); err != nil {
		t.Fatalf("decoding nix output: %v", err)
	}
	if len(res.Values) != len(values) || len(res.Types) != len(values) || len(res.Hashes) != len(values) || len(res.Mantissas) != len(wantMantissas) {
		t.Fatalf("nix returned %d values, %d types, %d hashes, %d mantissas; want %d, %d, %d, %d",
			len(res.Values), len(res.Types), len(res.Hashes), len(res.Mantissas), len(values), len(values), len(values), len(wantMantissas))
	}

	failures := 0
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		if failures++; failures >= 20 {
			t.Fatal("too many failures")
		}
	}
	for i, v := range values {
		model := toGo(v)
		if got, want := decodeJSON(t, res.Values[i]), decodeJSON(t, []byte(starlarkJSON(t, v))); !jsonEquiv(got, want) {
			fail("value %d: %s\n  encoded: %s\n  nix JSON:      %s\n  json.encode:   %s", i, v, encoded[i], res.Values[i], starlarkJSON(t, v))
		}
		if got, want := decodeJSON(t, res.Types[i]), normalize(t, goSig(model)); !jsonEquiv(got, want) {
			fail("value %d: %s\n  encoded: %s\n  nix types: %s\n  want:      %s", i, v, encoded[i], res.Types[i], mustMarshal(goSig(model)))
		}
		if got, want := decodeJSON(t, res.Hashes[i]), normalize(t, goWalk(model)); !jsonEquiv(got, want) {
			fail("value %d: %s\n  encoded: %q\n  strings differ byte-wise (sha256 mismatch)", i, v, encoded[i])
		}
	}
	j := 0
	for _, f := range floats {
		if f == 0 {
			continue
		}
		if got, want := string(res.Mantissas[j]), strconv.FormatInt(wantMantissas[j], 10); got != want {
			expr, _ := mantissaProbe(t, f)
			fail("float %v (%b): nix mantissa %s, want %s\n  probe: %s", f, f, got, want, expr)
		}
		j++
	}
}

func mustMarshal(v any) string {
	data, _ := gojson.Marshal(v)
	return string(data)
}

// TestEncodeTableWithNix evaluates every successful table case with
// `nix eval --json --expr` and compares with json.encode.
func TestEncodeTableWithNix(t *testing.T) {
	var values []starlark.Value
	var floats []float64
	for _, c := range encodeCases() {
		values = append(values, c.v)
		if f, ok := c.v.(starlark.Float); ok {
			floats = append(floats, float64(f))
		}
	}
	checkWithNix(t, values, floats, true)
}

// TestEncodeRoundTripNix is the property test: thousands of random values
// (nested lists, tuples, dicts, structs, hostile strings, extreme ints and
// floats, Nixers) plus random strings and floats, in one nix eval.
func TestEncodeRoundTripNix(t *testing.T) {
	needNix(t)
	seed := uint64(20260101)
	if s := os.Getenv("NIXENC_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("seed %d (set NIXENC_SEED to vary)", seed)
	g := &gen{r: rand.New(rand.NewPCG(seed, 7)), nixers: true, invalid: true, maxDepth: 4}

	var values []starlark.Value
	var floats []float64
	for i := 0; i < 1500; i++ {
		values = append(values, g.value(0))
	}
	for i := 0; i < 2000; i++ {
		values = append(values, starlark.String(g.str()))
	}
	for _, f := range specialFloats {
		values = append(values, starlark.Float(f))
		floats = append(floats, f)
	}
	for i := 0; i < 3000; i++ {
		f := g.float()
		floats = append(floats, f)
		if i%3 == 0 {
			values = append(values, starlark.Float(f))
		}
	}
	collectFloats(values, &floats)
	checkWithNix(t, values, floats, false)
}

// collectFloats appends all floats inside values.
func collectFloats(values []starlark.Value, out *[]float64) {
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case float64:
			*out = append(*out, v)
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, v := range values {
		if _, ok := v.(rawNix); !ok {
			walk(toGo(v))
		}
	}
}
