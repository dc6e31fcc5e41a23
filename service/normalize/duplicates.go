package normalize

import (
	"bytes"
	"strconv"

	"github.com/valyala/fastjson"
)

// duplicateMember finds a member name given twice, with different values,
// in one object of v, and returns the member's path ("meta.entity",
// "data.items[2].id").
//
// JSON leaves duplicate names to the reader (RFC 8259 §4), and readers
// disagree: fastjson, and so every normalizer, takes the first, while
// JavaScript's JSON.parse and Go's encoding/json take the last. A body
// that says "entity": "deal" and then "entity": "person" would be
// normalized (and filtered) as a deal, and read as a person by a receiver
// of the vendor's body. No vendor sends such a body, so it is refused. The
// same value twice means the same to every reader, and is let through.
func duplicateMember(v *fastjson.Value) (path string, found bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		type member struct {
			k []byte
			v *fastjson.Value
		}
		var small [16]member
		seen := small[:0]
		var many map[string]*fastjson.Value
		o.Visit(func(k []byte, child *fastjson.Value) {
			if found {
				return
			}
			if many == nil && len(seen) == len(small) {
				many = make(map[string]*fastjson.Value, 2*len(small))
				for _, m := range seen {
					many[string(m.k)] = m.v
				}
			}
			var first *fastjson.Value
			if many != nil {
				if first = many[string(k)]; first == nil {
					many[string(k)] = child
				}
			} else {
				for _, m := range seen {
					if bytes.Equal(m.k, k) {
						first = m.v
						break
					}
				}
				if first == nil {
					seen = append(seen, member{k, child})
				}
			}
			if first != nil {
				if !bytes.Equal(first.MarshalTo(nil), child.MarshalTo(nil)) {
					path, found = string(k), true
				}
				return // a repeat of the same value: its insides were looked at
			}
			if p, ok := duplicateMember(child); ok {
				path, found = joinPath(string(k), p), true
			}
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		for i, child := range a {
			if p, ok := duplicateMember(child); ok {
				return joinPath("["+strconv.Itoa(i)+"]", p), true
			}
		}
	}
	return path, found
}

// joinPath puts a member's path under its parent's name or index.
func joinPath(parent, child string) string {
	if child == "" || child[0] == '[' {
		return parent + child
	}
	return parent + "." + child
}
