package normalize

import (
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Redacted replaces secret values in stored request bodies and events.
const Redacted = "[REDACTED]"

// SecretMembers are the payload members no event or stored body keeps,
// whatever the vendor: Closer's per-customer `apiKey` and ClinchPad's
// `handshake_key` (names containing either, ignoring case). They apply to
// every vendor, so a credential of one copied into another's payload (a
// Pipedrive custom field named apiKey, a relay adding a handshake_key to a
// Closer body) is not kept either. Every normalizer's SecretMembers
// returns them.
var SecretMembers = []string{"apiKey", "handshake_key"}

var quotedRedacted = []byte(`"` + Redacted + `"`)

// ScrubBody returns body with its secrets replaced by "[REDACTED]", for
// storage. members names the vendor's secret members (Closer `apiKey`,
// ClinchPad `handshake_key`); secrets are the source's own credentials.
// What it replaces:
//
//   - the value of every member whose name contains one of members, at any
//     depth and of any type but null. Names are compared after JSON
//     unescaping (so `"handshake\u005fkey"` is `handshake_key`, as the
//     authenticator and the normalizers read it) and ignoring case, so
//     `old_handshake_key` and `customerApiKey` are secret too;
//   - the `value` member of every object whose `key` member names one of
//     members (Closer's `backOfficeData` entries `{"key": "apiKey", …}`);
//   - in a body that does not start like JSON (a form), the value of every
//     field whose name, percent-decoded, is one of members, and of every
//     field whose decoded value holds a secret; a field whose decoded value
//     is itself JSON or a form is scrubbed as such and re-encoded;
//   - every secret wherever it is: verbatim or percent-encoded anywhere, and
//     inside JSON strings once unescaped (such a string is re-encoded with
//     the secret replaced; one that holds it only percent-encoded is
//     replaced whole).
//
// It scans tokens rather than parsing, so malformed JSON, which is exactly
// what ends up in quarantine, is scrubbed too. body is not modified; when
// nothing matches it is returned as is.
func ScrubBody(body []byte, members, secrets []string) []byte {
	return scrubBody(body, members, nonEmpty(secrets), 0)
}

// maxFormDepth bounds how deep form fields holding forms or JSON are
// followed.
const maxFormDepth = 2

func scrubBody(body []byte, members, secrets []string, depth int) []byte {
	out := body
	if !looksJSON(body) {
		out = scrubForm(out, members, secrets, depth)
	}
	out = applyEdits(out, scanJSON(out, members, secrets))
	for _, s := range secrets {
		for _, form := range secretForms(s) {
			if bytes.Contains(out, []byte(form)) {
				if sameArray(out, body) {
					out = bytes.Clone(out)
				}
				out = bytes.ReplaceAll(out, []byte(form), []byte(Redacted))
			}
		}
	}
	return out
}

// secretForms are the spellings of a secret looked for verbatim: as is and
// percent-encoded.
func secretForms(s string) []string {
	forms := []string{s}
	for _, e := range []string{url.QueryEscape(s), url.PathEscape(s)} {
		if !slices.Contains(forms, e) {
			forms = append(forms, e)
		}
	}
	return forms
}

func sameArray(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && &a[0] == &b[0]
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// looksJSON reports whether body starts, after white space, like a JSON
// object or array.
func looksJSON(body []byte) bool {
	start := 0
	if bytes.HasPrefix(body, BOM) {
		start = len(BOM)
	}
	i := skipSpace(body, start)
	return i < len(body) && (body[i] == '{' || body[i] == '[')
}

// scrubForm scrubs an application/x-www-form-urlencoded body.
func scrubForm(body []byte, members, secrets []string, depth int) []byte {
	parts := bytes.Split(body, []byte("&"))
	changed := false
	for i, p := range parts {
		name, val, hasValue := bytes.Cut(p, []byte("="))
		dname, dval := formUnescape(name), formUnescape(val)
		var repl []byte
		switch {
		case hasValue && len(val) > 0 && isMember(dname, members):
			repl = []byte(Redacted)
		case depth < maxFormDepth && (looksJSON([]byte(dval)) || strings.ContainsAny(dval, "&=")):
			if sub := scrubBody([]byte(dval), members, secrets, depth+1); string(sub) != dval {
				repl = []byte(url.QueryEscape(string(sub)))
			}
		}
		if repl == nil && containsAny(dval, secrets) {
			repl = []byte(Redacted)
		}
		if repl == nil {
			continue
		}
		changed = true
		if hasValue {
			parts[i] = append(append(bytes.Clone(name), '='), repl...)
		} else {
			parts[i] = repl
		}
	}
	if !changed {
		return body
	}
	return bytes.Join(parts, []byte("&"))
}

func formUnescape(b []byte) string {
	if s, err := url.QueryUnescape(string(b)); err == nil {
		return s
	}
	return string(b)
}

// edit replaces body[start:end] with repl.
type edit struct {
	start, end int
	repl       []byte
}

// applyEdits applies edits to a copy of body; an edit inside another one
// (a string inside a redacted object) gives way to it.
func applyEdits(body []byte, edits []edit) []byte {
	if len(edits) == 0 {
		return body
	}
	slices.SortFunc(edits, func(a, b edit) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end
	})
	out := make([]byte, 0, len(body))
	last := 0
	for _, e := range edits {
		if e.start < last {
			continue
		}
		out = append(out, body[last:e.start]...)
		out = append(out, e.repl...)
		last = e.end
	}
	return append(out, body[last:]...)
}

// frame is one open object or array while scanning.
type frame struct {
	object    bool
	start     int    // offset of the opening bracket
	key       []byte // object: name of the member being read, as written (escapes not decoded)
	expectKey bool   // object: the next string is a member name
	pairKey   bool   // object: its "key" (or "record_name") member names a secret member
	values    []span // object: its "value" ("record_value", "old_record_value") members
}

// scanJSON finds what ScrubBody replaces in JSON text, tolerating any
// malformation: brackets that never close, members without values, text
// after the end.
func scanJSON(body []byte, members, secrets []string) []edit {
	var edits []edit
	var stack []frame
	isNull := func(start, end int) bool { return string(body[start:end]) == "null" }
	// value records a complete value body[start:end] of the innermost open
	// container.
	value := func(start, end int, str bool) {
		if len(stack) == 0 {
			return
		}
		f := &stack[len(stack)-1]
		if !f.object {
			return
		}
		if isMemberBytes(f.key, members) && !isNull(start, end) {
			edits = append(edits, edit{start, end, quotedRedacted})
		}
		switch keyIs(f.key) {
		case "key", "record_name":
			if str && isMemberBytes(body[start+1:max(start+1, end-1)], members) {
				f.pairKey = true
			}
		case "value", "record_value", "old_record_value":
			f.values = append(f.values, span{start, end})
		}
	}
	closeFrame := func(end int) {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if f.object && f.pairKey {
			for _, v := range f.values {
				if !isNull(v.start, v.end) {
					edits = append(edits, edit{v.start, v.end, quotedRedacted})
				}
			}
		}
		value(f.start, end, false)
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '{', '[':
			stack = append(stack, frame{object: c == '{', start: i, expectKey: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				closeFrame(i + 1)
			}
		case '"':
			end := stringEnd(body, i)
			closed := end >= 0
			if !closed {
				end = len(body) - 1
			}
			inner := body[i+1 : end+1]
			if closed {
				inner = body[i+1 : end]
			}
			if repl, ok := scrubJSONString(inner, secrets); ok {
				edits = append(edits, edit{i, end + 1, repl})
			}
			if f := top(stack); f != nil && f.object && f.expectKey {
				f.key, f.expectKey = inner, false
			} else if closed {
				value(i, end+1, true)
			}
			i = end
		case ',':
			if f := top(stack); f != nil && f.object {
				f.key, f.expectKey = nil, true
			}
		case ':':
			if f := top(stack); f != nil && f.object {
				f.expectKey = false
			}
		case ' ', '\t', '\n', '\r':
		default: // a number, true, false, null, or stray text
			j := i
			for j < len(body) && !isDelim(body[j]) && body[j] != ':' && body[j] != '"' && body[j] != '{' && body[j] != '[' {
				j++
			}
			value(i, j, false)
			i = j - 1
		}
	}
	for len(stack) > 0 { // unclosed containers end with the body
		closeFrame(len(body))
	}
	return edits
}

// span is where a value is in the body.
type span struct{ start, end int }

// pairNames are the member names of name/value pairs (Closer's
// backOfficeData `{key, value}`, ClinchPad's custom field
// `{record_name, record_value, old_record_value}`): an object whose name
// member names a secret member loses its values.
var pairNames = []string{"key", "value", "record_name", "record_value", "old_record_value"}

// keyIs returns the member name (as written) when it is one of pairNames
// once unescaped, else "".
func keyIs(name []byte) string {
	for _, n := range pairNames {
		if string(name) == n {
			return n
		}
	}
	if bytes.IndexByte(name, '\\') < 0 || len(name) > 6*len("old_record_value") {
		return ""
	}
	if u := unescapeJSON(name); slices.Contains(pairNames, u) {
		return u
	}
	return ""
}

func top(stack []frame) *frame {
	if len(stack) == 0 {
		return nil
	}
	return &stack[len(stack)-1]
}

// scrubJSONString returns the replacement of a JSON string token (inner is
// its text between the quotes) that holds a secret only once unescaped or
// percent-decoded; verbatim occurrences are left to the caller's final
// pass.
func scrubJSONString(inner []byte, secrets []string) ([]byte, bool) {
	if len(secrets) == 0 || (bytes.IndexByte(inner, '\\') < 0 && bytes.IndexByte(inner, '%') < 0) {
		return nil, false
	}
	s := unescapeJSON(inner)
	if r, ok := ScrubString(s, secrets); ok {
		q, _ := json.Marshal(r)
		return q, true
	}
	return nil, false
}

// ScrubString replaces every secret in s with "[REDACTED]"; a string that
// holds a secret only percent-encoded is replaced whole. It reports whether
// s changed.
func ScrubString(s string, secrets []string) (string, bool) {
	changed := false
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s, changed = strings.ReplaceAll(s, sec, Redacted), true
		}
	}
	if strings.IndexByte(s, '%') >= 0 {
		if d, err := url.QueryUnescape(s); err == nil && containsAny(d, secrets) {
			return Redacted, true
		}
		if d, err := url.PathUnescape(s); err == nil && containsAny(d, secrets) {
			return Redacted, true
		}
	}
	return s, changed
}

func containsAny(s string, secrets []string) bool {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			return true
		}
	}
	return false
}

// isMember reports whether name names one of members: it contains one,
// ignoring case, so variants such as `old_handshake_key` or `customerApiKey`
// are secret too. An ASCII name is compared in place, without a copy.
func isMember[S string | []byte](name S, members []string) bool {
	if len(name) == 0 {
		return false
	}
	ascii := isASCII(name)
	for _, m := range members {
		switch {
		case m == "":
		case ascii && isASCII(m):
			if containsFoldASCII(name, m) {
				return true
			}
		default:
			// Unicode case folding (the Kelvin sign is a k): the general path.
			if strings.Contains(strings.ToLower(string(name)), strings.ToLower(m)) {
				return true
			}
		}
	}
	return false
}

// isMemberBytes is isMember of a JSON name as written: unescaped first
// when it holds an escape.
func isMemberBytes(name []byte, members []string) bool {
	if bytes.IndexByte(name, '\\') >= 0 {
		return isMember(unescapeJSON(name), members)
	}
	return isMember(name, members)
}

// containsFoldASCII reports whether s contains sub, ignoring ASCII case;
// s is ASCII (a member name of another script lower-cases differently,
// see isMember).
func containsFoldASCII[S string | []byte](s S, sub string) bool {
	if len(sub) > len(s) {
		return false
	}
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && lowerASCII(s[i+j]) == lowerASCII(sub[j]) {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func isASCII[S string | []byte](s S) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// unescapeJSON decodes the escapes of a JSON string's text, leniently: an
// invalid escape is kept as written.
func unescapeJSON(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 >= len(b) {
			out = append(out, c)
			continue
		}
		i++
		switch e := b[i]; e {
		case '"', '\\', '/':
			out = append(out, e)
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
			r, ok := hexRune(b, i+1)
			if !ok {
				out = append(out, '\\', 'u')
				continue
			}
			i += 4
			if utf16.IsSurrogate(r) {
				if len(b) > i+2 && b[i+1] == '\\' && b[i+2] == 'u' {
					if r2, ok := hexRune(b, i+3); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							r = dec
							i += 6
						}
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			out = append(out, '\\', e)
		}
	}
	return string(out)
}

// stringEnd returns the index of the quote closing the string that opens
// at body[start], or -1 when it is not closed.
func stringEnd(body []byte, start int) int {
	for k := start + 1; k < len(body); k++ {
		switch body[k] {
		case '\\':
			k++
		case '"':
			return k
		}
	}
	return -1
}

func skipSpace(body []byte, i int) int {
	for i < len(body) && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r') {
		i++
	}
	return i
}

func isDelim(c byte) bool {
	return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
}
