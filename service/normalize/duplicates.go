package normalize

import (
	"bytes"
	"slices"
	"strconv"
	"sync"

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
//
// It runs on every webhook: each object's members are sorted by name in
// a scratch slice shared by the whole walk, so that names that repeat are
// neighbours, without a map or a string per member.
func duplicateMember(v *fastjson.Value) (path string, found bool) {
	scratch := membersPool.Get().(*[]member)
	path, found = findDuplicate(v, scratch)
	*scratch = (*scratch)[:0]
	membersPool.Put(scratch)
	return path, found
}

// member is one member of an object, as findDuplicate sorts them.
type member struct {
	name  []byte
	value *fastjson.Value
}

var membersPool = sync.Pool{New: func() any { s := make([]member, 0, 64); return &s }}

// findDuplicate is duplicateMember with scratch, a stack of the members
// of the objects being looked at: each object's go on its end, and are
// taken off when it is done.
func findDuplicate(v *fastjson.Value, scratch *[]member) (string, bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		o, _ := v.Object()
		base := len(*scratch)
		defer func() { *scratch = (*scratch)[:base] }()
		o.Visit(func(k []byte, child *fastjson.Value) { *scratch = append(*scratch, member{k, child}) })
		// The walk below appends after these: if that moves the stack to
		// a new array, this object's members stay as they are in the old.
		ms := (*scratch)[base:]
		slices.SortFunc(ms, func(a, b member) int { return bytes.Compare(a.name, b.name) })
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(ms[i-1].name, ms[i].name) && !bytes.Equal(ms[i-1].value.MarshalTo(nil), ms[i].value.MarshalTo(nil)) {
				return string(ms[i].name), true
			}
		}
		for _, m := range ms {
			if p, ok := findDuplicate(m.value, scratch); ok {
				return joinPath(string(m.name), p), true
			}
		}
	case fastjson.TypeArray:
		a, _ := v.Array()
		for i, child := range a {
			if p, ok := findDuplicate(child, scratch); ok {
				return joinPath("["+strconv.Itoa(i)+"]", p), true
			}
		}
	}
	return "", false
}

// joinPath puts a member's path under its parent's name or index.
func joinPath(parent, child string) string {
	if child == "" || child[0] == '[' {
		return parent + child
	}
	return parent + "." + child
}
