package nixenc

// A small Go-side model of the Nix 2.8 lexer and parser, for the subset of
// Nix that Encode produces. It lets tests and fuzz targets check that the
// output parses (the way Nix would parse it) back to the encoded data,
// without running nix. It follows src/libexpr/lexer.l and parser.y of Nix
// 2.8 and rejects everything outside the subset.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// decodeNixString decodes the "..." string literal at the start of src, the
// way Nix's lexer does, and returns the string and the number of bytes
// consumed. It fails on interpolation (${), which Encode must never produce.
//
// The lexer rules for the STRING state are
//
//	([^\$\"\\]|\$[^\{\"\\]|\\{ANY}|\$\\{ANY})*\$/\"  -> STR
//	([^\$\"\\]|\$[^\{\"\\]|\\{ANY}|\$\\{ANY})+       -> STR
//	\$\{                                             -> DOLLAR_CURLY
//	\"                                               -> end of string
//
// and each STR token is then unescaped by unescapeStr: \n \r \t, \c -> c,
// raw CR and CR LF -> LF. Note that $ followed by a character other than {,
// " or \ is consumed as a pair, so "$${" is the literal $${.
func decodeNixString(src string) (string, int, error) {
	if !strings.HasPrefix(src, `"`) {
		return "", 0, errors.New("string literal must start with \"")
	}
	var raw []byte
	i := 1
	for {
		if i >= len(src) {
			return "", 0, errors.New("unterminated string literal")
		}
		c := src[i]
		if c == 0 {
			return "", 0, errors.New("NUL byte in source")
		}
		switch c {
		case '"':
			return unescapeNixStr(raw), i + 1, nil
		case '\\':
			if i+1 >= len(src) {
				return "", 0, errors.New("unterminated escape")
			}
			raw = append(raw, src[i:i+2]...)
			i += 2
		case '$':
			if i+1 >= len(src) {
				return "", 0, errors.New("unterminated string literal after $")
			}
			switch src[i+1] {
			case '{':
				return "", 0, fmt.Errorf("interpolation ${ at offset %d", i)
			case '"':
				raw = append(raw, '$')
				i++
			case '\\':
				if i+2 >= len(src) {
					return "", 0, errors.New("unterminated escape")
				}
				raw = append(raw, src[i:i+3]...)
				i += 3
			default:
				raw = append(raw, src[i:i+2]...)
				i += 2
			}
		default:
			raw = append(raw, c)
			i++
		}
	}
}

// unescapeNixStr mirrors unescapeStr in Nix 2.8's lexer.l.
func unescapeNixStr(s []byte) string {
	var t []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch s[i] {
			case 'n':
				t = append(t, '\n')
			case 'r':
				t = append(t, '\r')
			case 't':
				t = append(t, '\t')
			default:
				t = append(t, s[i])
			}
		case c == '\r':
			t = append(t, '\n')
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		default:
			t = append(t, c)
		}
	}
	return string(t)
}

type tokKind int

const (
	tEOF tokKind = iota
	tID
	tInt
	tFloat
	tString
	tPunct
)

type token struct {
	kind tokKind
	text string // source text (punctuation char, identifier, number)
	str  string // decoded string for tString
	pos  int
}

func isIDStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' }
func isDigit(c byte) bool   { return c >= '0' && c <= '9' }
func isIDChar(c byte) bool  { return isIDStart(c) || isDigit(c) || c == '\'' || c == '-' }

// matchFloat returns the length of the longest match of Nix's FLOAT regex
// (([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)? at the start of s.
func matchFloat(s string) int {
	digits := func(i int) int {
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		return i
	}
	n := 0
	switch {
	case len(s) > 0 && s[0] >= '1' && s[0] <= '9':
		i := digits(1)
		if i >= len(s) || s[i] != '.' {
			return 0
		}
		n = digits(i + 1)
	default:
		i := 0
		if strings.HasPrefix(s, "0") {
			i = 1
		}
		if i >= len(s) || s[i] != '.' {
			return 0
		}
		j := digits(i + 1)
		if j == i+1 {
			return 0
		}
		n = j
	}
	if n < len(s) && (s[n] == 'e' || s[n] == 'E') {
		i := n + 1
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if j := digits(i); j > i {
			n = j
		}
	}
	return n
}

func lexNix(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			s, n, err := decodeNixString(src[i:])
			if err != nil {
				return nil, fmt.Errorf("offset %d: %v", i, err)
			}
			toks = append(toks, token{kind: tString, text: src[i : i+n], str: s, pos: i})
			i += n
		case isIDStart(c):
			j := i + 1
			for j < len(src) && isIDChar(src[j]) {
				j++
			}
			if j < len(src) && (src[j] == ':' || src[j] == '/') {
				return nil, fmt.Errorf("offset %d: identifier followed by %q would lex as URI/path", i, src[j])
			}
			toks = append(toks, token{kind: tID, text: src[i:j], pos: i})
			i = j
		case isDigit(c) || c == '.':
			j := i
			for j < len(src) && isDigit(src[j]) {
				j++
			}
			nInt := j - i
			nFloat := matchFloat(src[i:])
			switch {
			case nFloat > nInt:
				toks = append(toks, token{kind: tFloat, text: src[i : i+nFloat], pos: i})
				i += nFloat
			case nInt > 0:
				toks = append(toks, token{kind: tInt, text: src[i : i+nInt], pos: i})
				i += nInt
			default:
				return nil, fmt.Errorf("offset %d: unexpected '.'", i)
			}
			if i < len(src) && (src[i] == '/' || isIDChar(src[i]) || src[i] == '.') {
				return nil, fmt.Errorf("offset %d: number followed by %q", i, src[i])
			}
		case strings.IndexByte("[]{}()=;-*", c) >= 0:
			toks = append(toks, token{kind: tPunct, text: src[i : i+1], pos: i})
			i++
		default:
			return nil, fmt.Errorf("offset %d: unexpected character %q", i, c)
		}
	}
	return append(toks, token{kind: tEOF, pos: len(src)}), nil
}

type nixParser struct {
	toks []token
	i    int
}

func (p *nixParser) peek() token { return p.toks[p.i] }
func (p *nixParser) next() token { t := p.toks[p.i]; p.i++; return t }
func (p *nixParser) isPunct(s string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == s
}
func (p *nixParser) expect(s string) error {
	if t := p.next(); t.kind != tPunct || t.text != s {
		return fmt.Errorf("offset %d: expected %q, got %q", t.pos, s, t.text)
	}
	return nil
}

// parseNix parses src as produced by Encode and evaluates it. Values are
// nil, bool, int64, float64, string, []any and map[string]any. If atom is
// set, src must be a single atomic expression (what Nix accepts as a list
// element).
func parseNix(src string, atom bool) (any, error) {
	toks, err := lexNix(src)
	if err != nil {
		return nil, err
	}
	p := &nixParser{toks: toks}
	var v any
	if atom {
		v, err = p.atom()
	} else {
		v, err = p.expr()
	}
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("offset %d: trailing input %q", t.pos, t.text)
	}
	return v, nil
}

// expr: sum of products of unary expressions (Nix precedence: unary minus
// binds tighter than *, which binds tighter than binary -). Function
// application is not part of the subset.
func (p *nixParser) expr() (any, error) {
	x, err := p.product()
	if err != nil {
		return nil, err
	}
	for p.isPunct("-") {
		p.next()
		y, err := p.product()
		if err != nil {
			return nil, err
		}
		if x, err = arith('-', x, y); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (p *nixParser) product() (any, error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.isPunct("*") {
		p.next()
		y, err := p.unary()
		if err != nil {
			return nil, err
		}
		if x, err = arith('*', x, y); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (p *nixParser) unary() (any, error) {
	if p.isPunct("-") {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return arith('-', int64(0), x) // Nix: -x is __sub 0 x
	}
	x, err := p.atom()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF && t.kind != tPunct {
		return nil, fmt.Errorf("offset %d: function application is outside the encoder's subset", t.pos)
	}
	if p.isPunct("(") || p.isPunct("[") || p.isPunct("{") {
		return nil, fmt.Errorf("offset %d: function application is outside the encoder's subset", p.peek().pos)
	}
	return x, nil
}

func arith(op byte, x, y any) (any, error) {
	xi, xInt := x.(int64)
	yi, yInt := y.(int64)
	if xInt && yInt {
		switch op {
		case '-':
			r := xi - yi
			if (yi > 0 && r > xi) || (yi < 0 && r < xi) {
				return nil, fmt.Errorf("integer overflow in %d - %d", xi, yi)
			}
			return r, nil
		case '*':
			if xi != 0 && (xi*yi)/xi != yi {
				return nil, fmt.Errorf("integer overflow in %d * %d", xi, yi)
			}
			return xi * yi, nil
		}
	}
	xf, ok1 := toFloat(x)
	yf, ok2 := toFloat(y)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("arithmetic on non-numbers %T %c %T", x, op, y)
	}
	if op == '-' {
		return xf - yf, nil
	}
	return xf * yf, nil
}

func toFloat(x any) (float64, bool) {
	switch x := x.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

func (p *nixParser) atom() (any, error) {
	t := p.next()
	switch t.kind {
	case tInt:
		n, err := strconv.ParseInt(t.text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid integer %q", t.text) // as Nix 2.8
		}
		return n, nil
	case tFloat:
		f, err := strconv.ParseFloat(t.text, 64)
		// glibc strtod reports ERANGE for overflow, underflow to zero and
		// subnormal results; Nix 2.8 turns that into "invalid float".
		if err != nil || math.IsInf(f, 0) || f != 0 && math.Abs(f) < 0x1p-1022 ||
			f == 0 && strings.ContainsAny(strings.SplitN(strings.ToLower(t.text), "e", 2)[0], "123456789") {
			return nil, fmt.Errorf("invalid float %q", t.text)
		}
		return f, nil
	case tString:
		return t.str, nil
	case tID:
		switch t.text {
		case "null":
			return nil, nil
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("offset %d: unknown variable %q", t.pos, t.text)
	case tPunct:
		switch t.text {
		case "(":
			v, err := p.expr()
			if err != nil {
				return nil, err
			}
			return v, p.expect(")")
		case "[":
			l := []any{}
			for !p.isPunct("]") {
				if p.peek().kind == tEOF {
					return nil, errors.New("unterminated list")
				}
				v, err := p.atom()
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			p.next()
			return l, nil
		case "{":
			m := map[string]any{}
			for !p.isPunct("}") {
				a := p.next()
				var name string
				switch {
				case a.kind == tID && !nixKeywords[a.text]:
					name = a.text
				case a.kind == tString:
					name = a.str
				default:
					return nil, fmt.Errorf("offset %d: bad attribute name %q", a.pos, a.text)
				}
				if err := p.expect("="); err != nil {
					return nil, err
				}
				v, err := p.expr()
				if err != nil {
					return nil, err
				}
				if err := p.expect(";"); err != nil {
					return nil, err
				}
				if _, dup := m[name]; dup {
					return nil, fmt.Errorf("attribute %q already defined", name)
				}
				m[name] = v
			}
			p.next()
			return m, nil
		}
	}
	return nil, fmt.Errorf("offset %d: unexpected %q", t.pos, t.text)
}
