// Package nixenc encodes Starlark values as Nix expressions.
//
// The encoding is total and safe: every Starlark value is either encoded
// exactly (evaluating the result in Nix yields the same data) or rejected
// with an *Error that names the offending value by its type and its
// position inside the encoded value.
//
// Mapping:
//
//	None                 null
//	bool                 true / false
//	int                  integer (must fit in a signed 64-bit integer)
//	float                float (finite only; always a Nix float, never an int)
//	string               "string literal" (must not contain NUL)
//	list, tuple          [ a b c ]
//	dict (string keys)   { a = 1; "b c" = 2; }   (keys sorted)
//	struct               { a = 1; }               (fields sorted)
//	Nixer                (expr)
//
// Anything else (bytes, functions, sets, ranges, ...) is an error.
//
// The result of Encode is always a single atomic Nix expression (a literal, a
// list, an attribute set or a parenthesized expression), so it can be spliced
// into surrounding Nix code as a function argument or list element.
// The output contains no newlines unless a Nixer's expression does and is
// deterministic: equal values encode to identical text.
package nixenc

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
)

// Nixer is implemented by fleet's own Starlark values (paths, raw Nix
// expressions, hosts) that know their Nix form.
//
// NixExpr returns a complete Nix expression. Encode always wraps it in
// parentheses, so it may be any expression (a function application, a
// binary operation, a let expression, ...).
type Nixer interface {
	NixExpr() (string, error)
}

// MaxDepth is the maximum nesting depth of lists, tuples, dicts and structs
// that Encode accepts. Deeper (or cyclic) values are rejected.
const MaxDepth = 100

// Error reports a value that cannot be encoded.
type Error struct {
	// Path is the position of the offending value, starting with the root
	// name ("value" for Encode, the given name for EncodeNamed), e.g.
	// special_args["hosts"][2].vars["x"].
	Path string
	// Type is the Starlark type of the offending value.
	Type string
	// Err describes the problem.
	Err error
}

func (e *Error) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrNUL is returned (possibly wrapped) for strings and attribute names that
// contain a NUL byte: Nix strings cannot hold NUL.
var ErrNUL = errors.New("Nix strings cannot contain NUL bytes")

// Encode returns a Nix expression for v. Errors are of type *Error; their
// path starts with "value".
func Encode(v starlark.Value) (string, error) {
	return EncodeNamed("value", v)
}

// EncodeNamed is like Encode but uses name as the root of the path in error
// messages, e.g. EncodeNamed("special_args", v) may fail with
// `special_args["hosts"][2].vars["x"]: function values cannot be encoded to Nix`.
func EncodeNamed(name string, v starlark.Value) (string, error) {
	e := encoder{root: name}
	if err := e.encode(v, true); err != nil {
		return "", err
	}
	return string(e.buf), nil
}

// String returns a Nix string literal for s. It escapes ", \, ${ (as \${),
// newline, carriage return and tab; all other bytes (including other
// control characters, non-ASCII UTF-8 and invalid UTF-8) are emitted as is,
// which Nix preserves byte for byte. A NUL byte is an error.
func String(s string) (string, error) {
	b, err := appendString(nil, s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// AttrName returns s as a Nix attribute name: bare if it is a valid Nix
// identifier and not a keyword, else a quoted string literal.
func AttrName(s string) (string, error) {
	if isBareAttr(s) {
		return s, nil
	}
	return String(s)
}

// nixKeywords are the reserved words of the Nix language.
var nixKeywords = map[string]bool{
	"if": true, "then": true, "else": true, "assert": true, "with": true,
	"let": true, "in": true, "rec": true, "inherit": true, "or": true,
}

// isBareAttr reports whether s can be written as a bare attribute name:
// it matches Nix's ID token, [a-zA-Z_][a-zA-Z0-9_'-]*, and is not a keyword.
func isBareAttr(s string) bool {
	if s == "" || nixKeywords[s] {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_':
		case i > 0 && ('0' <= c && c <= '9' || c == '\'' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func nulError(s string) error {
	return fmt.Errorf("%w (NUL at byte offset %d)", ErrNUL, strings.IndexByte(s, 0))
}

// appendString appends the Nix string literal for s to b.
//
// Inside "..." the Nix lexer treats \ as an escape (\n, \r, \t, anything
// else stands for itself), starts an interpolation at ${, and turns raw CR
// and CR LF into LF. So we escape ", \, newline, CR and tab, and write the $
// of every ${ as \$. A lone $ (including a trailing one, and $$) is literal.
func appendString(b []byte, s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return b, nulError(s)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '$':
			if i+1 < len(s) && s[i+1] == '{' {
				b = append(b, '\\')
			}
			b = append(b, '$')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"'), nil
}

// appendInt appends the Nix expression for x.
// Nix has no negative literals: -5 is the application __sub 0 5, which must be
// parenthesized where an atom is expected. The literal 9223372036854775808 is
// rejected by the lexer, so MinInt64 is written as a subtraction.
func appendInt(b []byte, x int64, atom bool) []byte {
	switch {
	case x == math.MinInt64:
		return append(b, "(-9223372036854775807 - 1)"...)
	case x < 0 && atom:
		b = append(b, '(')
		b = strconv.AppendInt(b, x, 10)
		return append(b, ')')
	default:
		return strconv.AppendInt(b, x, 10)
	}
}

const (
	minNormal = 0x1p-1022
	// subnormalScale is the power of two by which subnormal floats are
	// scaled up into the normal range (see appendFloat).
	subnormalScale = 64
)

// appendFloat appends the Nix expression for the finite float f.
//
// Nix 2.8's float token is (([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)?:
// a decimal point is mandatory (1e5 is not a float; 1.0e5 is), and the value
// is parsed with strtod, which is correctly rounded, so the shortest
// round-trip digits reproduce f exactly. Quirks handled here:
//   - literals of subnormal numbers are rejected ("invalid float", strtod
//     reports ERANGE), so a subnormal f is written as (f·2⁶⁴ * 2⁻⁶⁴), both
//     factors normal and the product exact;
//   - -0.0 is __sub 0 0.0 = +0.0, so negative zero is written as (-1.0 * 0.0).
func appendFloat(b []byte, f float64, atom bool) []byte {
	neg := math.Signbit(f)
	switch {
	case f == 0 && neg:
		return append(b, "(-1.0 * 0.0)"...)
	case f != 0 && math.Abs(f) < minNormal:
		b = append(b, '(')
		b = appendFloatLiteral(b, math.Ldexp(f, subnormalScale))
		b = append(b, " * "...)
		b = appendFloatLiteral(b, math.Ldexp(1, -subnormalScale))
		return append(b, ')')
	case neg && atom:
		b = append(b, '(')
		b = appendFloatLiteral(b, f)
		return append(b, ')')
	default:
		return appendFloatLiteral(b, f)
	}
}

// appendFloatLiteral appends f (finite, normal or zero) as a Nix float token,
// preceded by "-" if f is negative.
func appendFloatLiteral(b []byte, f float64) []byte {
	e := strconv.FormatFloat(f, 'e', -1, 64) // e.g. "-1.2345e+06", "5e-324"
	mant, exp, _ := strings.Cut(e, "e")
	x, _ := strconv.Atoi(exp)
	if -5 <= x && x < 21 {
		s := strconv.FormatFloat(f, 'f', -1, 64)
		b = append(b, s...)
		if !strings.Contains(s, ".") {
			b = append(b, ".0"...)
		}
		return b
	}
	b = append(b, mant...)
	if !strings.Contains(mant, ".") {
		b = append(b, ".0"...)
	}
	b = append(b, 'e')
	return strconv.AppendInt(b, int64(x), 10)
}

// A segment of the path to the value being encoded.
type segment struct {
	kind  byte // '[' list index, 'k' dict key, '.' struct field
	index int
	name  string
}

type encoder struct {
	buf   []byte
	root  string
	path  []segment
	depth int   // nesting depth of containers
	stack []any // lists, dicts and structs being encoded, for cycle detection
	short bool  // name only the first levels of a long path
}

func (e *encoder) pathString() string {
	var sb strings.Builder
	sb.WriteString(e.root)
	for i, s := range e.path {
		if e.short && i == shortPathLevels && len(e.path) > shortPathLevels+1 {
			sb.WriteString(elided(len(e.path) - i))
			break
		}
		switch s.kind {
		case '[':
			fmt.Fprintf(&sb, "[%d]", s.index)
		case 'k':
			sb.WriteString("[" + starlark.String(s.name).String() + "]")
		case '.':
			if isStarlarkIdent(s.name) {
				sb.WriteString("." + s.name)
			} else {
				sb.WriteString("." + starlark.String(s.name).String())
			}
		}
	}
	return sb.String()
}

func isStarlarkIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

func (e *encoder) errorf(v starlark.Value, format string, args ...any) error {
	return e.wrap(v, fmt.Errorf(format, args...))
}

func (e *encoder) wrap(v starlark.Value, err error) error {
	typ := "nil"
	if v != nil {
		typ = v.Type()
	}
	return &Error{Path: e.pathString(), Type: typ, Err: err}
}

// describe returns a short representation of v for error messages.
func describe(v starlark.Value) string {
	s := v.String()
	if len(s) > 60 {
		cut := 57
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// enter records that the container v is being encoded. It fails if v is
// already being encoded (a cycle) or the nesting is too deep. id identifies
// the container for cycle detection (nil for immutable ones such as tuples,
// which can only be part of a cycle through a mutable container).
func (e *encoder) enter(v starlark.Value, id any) error {
	if id != nil && slices.Contains(e.stack, id) {
		return e.errorf(v, "cyclic reference: this %s contains itself", v.Type())
	}
	if e.depth >= MaxDepth {
		return e.errorf(v, "value nested more than %d levels deep", MaxDepth)
	}
	e.depth++
	if id != nil {
		e.stack = append(e.stack, id)
	}
	return nil
}

func (e *encoder) leave(id any) {
	e.depth--
	if id != nil {
		e.stack = e.stack[:len(e.stack)-1]
	}
}

// encode appends the Nix expression for v. If atom is set, the expression
// must be atomic (usable as a list element or function argument).
func (e *encoder) encode(v starlark.Value, atom bool) error {
	// Nixer first: fleet's own values may be any Starlark type.
	if n, ok := v.(Nixer); ok {
		return e.encodeNixer(v, n)
	}
	switch v := v.(type) {
	case nil:
		return e.errorf(v, "nil Go value (not a Starlark value)")
	case starlark.NoneType:
		e.buf = append(e.buf, "null"...)
	case starlark.Bool:
		if v {
			e.buf = append(e.buf, "true"...)
		} else {
			e.buf = append(e.buf, "false"...)
		}
	case starlark.Int:
		x, ok := v.Int64()
		if !ok {
			return e.errorf(v, "integer %s does not fit in Nix's 64-bit signed integers", describe(v))
		}
		e.buf = appendInt(e.buf, x, atom)
	case starlark.Float:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return e.errorf(v, "float %s cannot be encoded to Nix (Nix floats must be finite)", v)
		}
		e.buf = appendFloat(e.buf, f, atom)
	case starlark.String:
		b, err := appendString(e.buf, string(v))
		if err != nil {
			return e.wrap(v, fmt.Errorf("string: %w", err))
		}
		e.buf = b
	case starlark.Bytes:
		return e.errorf(v, "bytes values cannot be encoded to Nix (convert to a string first)")
	case *starlark.List:
		return e.encodeList(v, v, v.Len(), v.Index)
	case starlark.Tuple:
		return e.encodeList(v, nil, len(v), v.Index)
	case *starlark.Dict:
		return e.encodeDict(v)
	case *starlarkstruct.Struct:
		return e.encodeStruct(v)
	case *starlark.Function, *starlark.Builtin:
		return e.errorf(v, "function values cannot be encoded to Nix (got %s)", describe(v))
	default:
		return e.errorf(v, "%s values cannot be encoded to Nix", v.Type())
	}
	return nil
}

func (e *encoder) encodeNixer(v starlark.Value, n Nixer) error {
	expr, err := n.NixExpr()
	if err != nil {
		return e.wrap(v, fmt.Errorf("NixExpr: %w", err))
	}
	if strings.TrimSpace(expr) == "" {
		return e.errorf(v, "NixExpr returned an empty expression")
	}
	if strings.IndexByte(expr, 0) >= 0 {
		return e.wrap(v, fmt.Errorf("NixExpr: %w", nulError(expr)))
	}
	e.buf = append(e.buf, '(')
	e.buf = append(e.buf, expr...)
	if strings.Contains(expr, "#") {
		// The expression may end in a line comment, which would swallow
		// the closing parenthesis.
		e.buf = append(e.buf, '\n')
	}
	e.buf = append(e.buf, ')')
	return nil
}

func (e *encoder) encodeList(v starlark.Value, id any, n int, index func(int) starlark.Value) error {
	if err := e.enter(v, id); err != nil {
		return err
	}
	defer e.leave(id)
	e.buf = append(e.buf, '[')
	for i := 0; i < n; i++ {
		e.buf = append(e.buf, ' ')
		e.path = append(e.path, segment{kind: '[', index: i})
		if err := e.encode(index(i), true); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
	}
	e.buf = append(e.buf, " ]"...)
	return nil
}

type attr struct {
	name  string
	value starlark.Value
}

func (e *encoder) encodeDict(d *starlark.Dict) error {
	if err := e.enter(d, d); err != nil {
		return err
	}
	defer e.leave(d)
	items := d.Items()
	attrs := make([]attr, len(items))
	for i, kv := range items {
		k, ok := kv[0].(starlark.String)
		if !ok {
			return e.errorf(d, "dict key %s has type %s, but Nix attribute names must be strings", describe(kv[0]), kv[0].Type())
		}
		attrs[i] = attr{string(k), kv[1]}
	}
	slices.SortFunc(attrs, func(a, b attr) int { return strings.Compare(a.name, b.name) })
	return e.encodeAttrs(d, attrs, 'k')
}

func (e *encoder) encodeStruct(s *starlarkstruct.Struct) error {
	if err := e.enter(s, s); err != nil {
		return err
	}
	defer e.leave(s)
	attrs := make([]attr, 0, s.Len())
	for name, value := range s.Entries() {
		attrs = append(attrs, attr{name, value})
	}
	slices.SortFunc(attrs, func(a, b attr) int { return strings.Compare(a.name, b.name) })
	return e.encodeAttrs(s, attrs, '.')
}

func (e *encoder) encodeAttrs(v starlark.Value, attrs []attr, kind byte) error {
	e.buf = append(e.buf, '{')
	for _, a := range attrs {
		e.buf = append(e.buf, ' ')
		if isBareAttr(a.name) {
			e.buf = append(e.buf, a.name...)
		} else {
			b, err := appendString(e.buf, a.name)
			if err != nil {
				what := "dict key"
				if kind == '.' {
					what = "struct field name"
				}
				return e.wrap(v, fmt.Errorf("%s %s: %w", what, starlark.String(a.name), err))
			}
			e.buf = b
		}
		e.buf = append(e.buf, " = "...)
		e.path = append(e.path, segment{kind: kind, name: a.name})
		if err := e.encode(a.value, false); err != nil {
			return err
		}
		e.path = e.path[:len(e.path)-1]
		e.buf = append(e.buf, ';')
	}
	e.buf = append(e.buf, " }"...)
	return nil
}
