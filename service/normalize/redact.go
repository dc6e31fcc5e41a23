package normalize

// Redacted replaces secret values in stored request bodies.
const Redacted = "[REDACTED]"

// RedactKeys returns body with the value of every member named by one of
// keys replaced by "[REDACTED]", at any depth. It scans tokens rather than
// parsing, so it also works on malformed JSON, which is exactly what ends
// up in quarantine. Object and array values are left alone (no vendor
// sends a secret as one). body is not modified; when nothing matches it is
// returned as is.
func RedactKeys(body []byte, keys ...string) []byte {
	var out []byte
	last := 0 // body[last:] is not yet copied to out
	for i := 0; i < len(body); i++ {
		if body[i] != '"' {
			continue
		}
		end := stringEnd(body, i)
		if end < 0 {
			break
		}
		tok := body[i+1 : end]
		i = end
		if !matchesAny(tok, keys) {
			continue
		}
		j := skipSpace(body, end+1)
		if j >= len(body) || body[j] != ':' {
			continue
		}
		j = skipSpace(body, j+1)
		if j >= len(body) {
			break
		}
		var vEnd int // exclusive end of the value
		switch c := body[j]; {
		case c == '"':
			e := stringEnd(body, j)
			if e < 0 {
				vEnd = len(body)
			} else {
				vEnd = e + 1
			}
		case c == '{' || c == '[':
			continue
		default:
			vEnd = j
			for vEnd < len(body) && !isDelim(body[vEnd]) {
				vEnd++
			}
		}
		if vEnd == j || string(body[j:vEnd]) == "null" {
			i = vEnd - 1
			continue
		}
		out = append(out, body[last:j]...)
		out = append(out, '"')
		out = append(out, Redacted...)
		out = append(out, '"')
		last = vEnd
		i = vEnd - 1
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
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

func matchesAny(tok []byte, keys []string) bool {
	for _, k := range keys {
		if string(tok) == k {
			return true
		}
	}
	return false
}
