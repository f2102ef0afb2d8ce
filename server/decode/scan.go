package decode

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small validating JSON scanner. [Batch] uses it to find the events
// in a body in one pass, without building values, and to read each event's
// members as spans of the body.

// maxNesting bounds the nesting of a request body, as encoding/json does.
const maxNesting = 10000

var errSyntax = errors.New("invalid JSON")

type scanner struct {
	b []byte
	i int
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// strPlain marks the bytes a string's content may hold with no further
// check: everything but '"', '\\' and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (s *scanner) ws() {
	i := s.i
	for i < len(s.b) && s.b[i] <= ' ' && isSpace(s.b[i]) {
		i++
	}
	s.i = i
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str scans a string at s.i (after optional space) and returns its content
// without the quotes, still escaped, and whether it has escapes.
func (s *scanner) str() ([]byte, bool, error) {
	if s.peek() != '"' {
		return nil, false, errSyntax
	}
	s.i++
	start := s.i
	esc := false
	for s.i < len(s.b) {
		i, b := s.i, s.b
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			s.i++
			return s.b[start : s.i-1], esc, nil
		case c == '\\':
			esc = true
			if s.i+1 >= len(s.b) {
				return nil, false, errSyntax
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false, errSyntax
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false, errSyntax
					}
				}
				s.i += 6
			default:
				return nil, false, errSyntax
			}
		case c < 0x20:
			return nil, false, errSyntax
		default:
			s.i++
		}
	}
	return nil, false, errSyntax
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// number scans a number and returns it.
func (s *scanner) number() ([]byte, error) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i >= len(s.b) {
		return nil, errSyntax
	}
	if s.b[s.i] == '0' {
		s.i++
	} else if isDigit(s.b[s.i]) {
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	} else {
		return nil, errSyntax
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return nil, errSyntax
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.i >= len(s.b) || !isDigit(s.b[s.i]) {
			return nil, errSyntax
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
		}
	}
	return s.b[start:s.i], nil
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return errSyntax
	}
	s.i += len(word)
	return nil
}

// value scans any JSON value and returns its span. Nesting is tracked on
// a stack, not by recursion.
func (s *scanner) value() ([]byte, error) {
	s.ws()
	start := s.i
	var small [32]byte
	stack := small[:0] // '{' or '['; deeper nesting moves it to the heap
	for {
		// A value is expected here.
		switch c := s.peek(); {
		case c == '{':
			s.i++
			if s.expect('}') {
				break
			}
			if len(stack) >= maxNesting {
				return nil, errSyntax
			}
			stack = append(stack, '{')
			if _, _, err := s.str(); err != nil {
				return nil, err
			}
			if !s.expect(':') {
				return nil, errSyntax
			}
			continue
		case c == '[':
			s.i++
			if s.expect(']') {
				break
			}
			if len(stack) >= maxNesting {
				return nil, errSyntax
			}
			stack = append(stack, '[')
			continue
		case c == '"':
			if _, _, err := s.str(); err != nil {
				return nil, err
			}
		case c == '-' || isDigit(c):
			if _, err := s.number(); err != nil {
				return nil, err
			}
		case c == 't':
			if err := s.literal("true"); err != nil {
				return nil, err
			}
		case c == 'f':
			if err := s.literal("false"); err != nil {
				return nil, err
			}
		case c == 'n':
			if err := s.literal("null"); err != nil {
				return nil, err
			}
		default:
			return nil, errSyntax
		}
		// A value ended: close containers or move to the next member.
		for {
			if len(stack) == 0 {
				return s.b[start:s.i], nil
			}
			top := stack[len(stack)-1]
			if s.expect(',') {
				if top == '{' {
					if _, _, err := s.str(); err != nil {
						return nil, err
					}
					if !s.expect(':') {
						return nil, errSyntax
					}
				}
				break
			}
			closer := byte('}')
			if top == '[' {
				closer = ']'
			}
			if !s.expect(closer) {
				return nil, errSyntax
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// members calls f for each member of the object at s.i, with the key still
// escaped and the value's span. The text must be valid JSON.
func (s *scanner) members(f func(key []byte, esc bool, val []byte) error) error {
	if !s.expect('{') {
		return errSyntax
	}
	if s.expect('}') {
		return nil
	}
	for {
		k, esc, err := s.str()
		if err != nil {
			return err
		}
		if !s.expect(':') {
			return errSyntax
		}
		v, err := s.value()
		if err != nil {
			return err
		}
		if err := f(k, esc, v); err != nil {
			return err
		}
		if s.expect(',') {
			continue
		}
		if s.expect('}') {
			return nil
		}
		return errSyntax
	}
}

// unescape decodes the content of a JSON string. The text must be valid
// JSON without lone surrogates.
func unescape(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r1, _ := strconv.ParseUint(string(raw[i+1:i+5]), 16, 32)
			i += 4
			r := rune(r1)
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				r2, _ := strconv.ParseUint(string(raw[i+3:i+7]), 16, 32)
				r = utf16.DecodeRune(r, rune(r2))
				i += 6
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, raw[i])
		}
	}
	return string(out)
}
