package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/structpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

const (
	codeShape = hookstreamv1.RejectionCode_REJECTION_CODE_WRONG_SHAPE
	codeField = hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD
)

// Parse checks the body and parses it with parser p from pool. The
// returned value lives until p is put back into pool (not on failure,
// when p is nil). Every failure is a *Rejection.
func Parse(pool *fastjson.ParserPool, body []byte) (v *fastjson.Value, p *fastjson.Parser, err error) {
	if len(body) == 0 {
		return nil, nil, Reject(hookstreamv1.RejectionCode_REJECTION_CODE_EMPTY_BODY, "", "request body is empty")
	}
	if !utf8.Valid(body) {
		return nil, nil, Reject(hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_UTF8, "", "request body is not valid UTF-8")
	}
	// A byte order mark is no error (RFC 8259 §8.1 lets a parser ignore it).
	body = bytes.TrimPrefix(body, BOM)
	body = replaceLoneSurrogates(body)
	p = pool.Get()
	v, err = p.ParseBytes(body)
	if err != nil {
		pool.Put(p)
		return nil, nil, syntaxRejection(body, err)
	}
	if v.Type() != fastjson.TypeObject {
		pool.Put(p)
		return nil, nil, Reject(codeShape, "", "body must be a JSON object, got %s", v.Type())
	}
	if path, dup := duplicateMember(v); dup {
		pool.Put(p)
		if len(path) > 128 { // a name is the sender's: keep the answer short
			path = strings.ToValidUTF8(path[:128], "") + "…"
		}
		return nil, nil, Reject(hookstreamv1.RejectionCode_REJECTION_CODE_MALFORMED_JSON, path,
			"member %s appears twice in one object with different values; readers of JSON disagree on which counts", path)
	}
	return v, p, nil
}

// BOM is UTF-8's byte order mark, which some senders put before JSON.
var BOM = []byte("\xef\xbb\xbf")

// replaceLoneSurrogates returns body with every escaped UTF-16 surrogate
// that is not half of a pair (`\ud83d` alone, or followed by anything but
// a low surrogate) written as `\ufffd`, the replacement character, as
// encoding/json and the secret redactor decode it. fastjson would leave
// such an escape in the string as its six characters of text, which then
// reads as if the vendor had sent a backslash. The escape and its
// replacement are the same length, so offsets into body stay true. A body
// without one is returned as it is, uncopied.
func replaceLoneSurrogates(body []byte) []byte {
	out := body
	for i := 0; ; {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 || i+j+1 >= len(body) {
			return out
		}
		i += j
		if body[i+1] != 'u' {
			i += 2 // an escaped character, `\\` included
			continue
		}
		x, ok := hexRune(body, i+2)
		switch {
		case !ok:
			i += 2 // not an escape fastjson decodes; what follows is looked at
			continue
		case x < 0xd800 || x > 0xdfff:
			i += 6
			continue
		}
		if x < 0xdc00 && i+11 < len(body) && body[i+6] == '\\' && body[i+7] == 'u' {
			if y, ok := hexRune(body, i+8); ok && y >= 0xdc00 && y <= 0xdfff {
				i += 12 // a pair
				continue
			}
		}
		if &out[0] == &body[0] {
			out = bytes.Clone(body)
		}
		copy(out[i+2:i+6], "fffd")
		i += 6
	}
}

// hexRune reads the four hex digits of a \u escape at b[i:], without
// allocating (Parse runs it on every escape of every body; the redactor
// on the strings it decodes).
func hexRune(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var x rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			x = x<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			x = x<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			x = x<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return x, true
}

// syntaxRejection explains why body failed to parse. fastjson's own
// messages quote the text around the problem, which may be payload bytes,
// so the position comes from encoding/json instead (this runs only on the
// error path).
func syntaxRejection(body []byte, parseErr error) *Rejection {
	const code = hookstreamv1.RejectionCode_REJECTION_CODE_MALFORMED_JSON
	var raw json.RawMessage
	err := json.Unmarshal(body, &raw)
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		line, col := position(body, se.Offset)
		msg := se.Error()
		if strings.Contains(msg, "max depth") {
			return Reject(code, "", "body nests deeper than %d levels", fastjson.MaxDepth)
		}
		return Reject(code, "", "body is not valid JSON: %s (line %d, column %d)", msg, line, col)
	case err == nil && strings.Contains(parseErr.Error(), "depth"):
		return Reject(code, "", "body nests deeper than %d levels", fastjson.MaxDepth)
	}
	return Reject(code, "", "body is not valid JSON")
}

// position turns a byte offset into a 1-based line and column.
func position(body []byte, off int64) (line, col int) {
	if off > int64(len(body)) {
		off = int64(len(body))
	}
	before := body[:off]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Reader reads typed values out of a parsed JSON document. It keeps the
// path of the object being read so that errors name the exact field, and it
// remembers only the first error: after one, every read returns a zero
// value, so decoders check Err once at the end.
type Reader struct {
	arena   []byte // backing store of the strings of converted subtrees, see intern
	loose   []byte // backing store of the other strings read, see intern
	bodyLen int
	err     *Rejection
	path    []pathElem
	scratch []byte
	slab    valueSlab
	// pathBuf and scratchBuf back path and scratch while they fit (path:
	// every vendor payload's nesting; scratch: any number of up to 32
	// characters), sparing the allocations of growing them.
	pathBuf    [8]pathElem
	scratchBuf [32]byte
	// checkUTF8 is whether strings and keys must be checked for valid
	// UTF-8 after unescaping (see reset).
	checkUTF8 bool
}

type pathElem struct {
	key   string
	index int // -1 when the element is an object key
}

// NewReader returns a reader for a document parsed from body, which must
// be valid UTF-8 (Parse checks it).
func NewReader(body []byte) *Reader {
	r := &Reader{}
	r.reset(body)
	return r
}

// readers recycles Readers between documents (see getReader).
var readers = sync.Pool{New: func() any { return new(Reader) }}

// getReader is NewReader with a Reader from the pool. Only the Reader
// itself is reused: the string arenas and the value slabs, which the
// returned event points into, are allocated afresh for each document, so
// no event is ever written by a later call. Give it back with putReader
// once its document is done.
func getReader(body []byte) *Reader {
	r := readers.Get().(*Reader)
	r.reset(body)
	return r
}

// putReader returns r to the pool, dropping everything it points to (the
// arenas and slabs now belong to an event, the path to the document).
func putReader(r *Reader) {
	*r = Reader{}
	readers.Put(r)
}

// reset prepares r, zero or cleared by putReader, for a document parsed
// from body.
func (r *Reader) reset(body []byte) {
	r.path, r.scratch = r.pathBuf[:0], r.scratchBuf[:0]
	r.bodyLen = len(body)
	// Unescaping turns every escape but \uXXXX into ASCII and leaves the
	// other bytes as they are, so when a valid UTF-8 body has no \u, every
	// string and key read from it is valid UTF-8 and needs no check.
	r.checkUTF8 = bytes.Contains(body, []byte(`\u`))
}

// intern copies b into one of the reader's arenas and returns it as a
// string backed by it: a few allocations per document instead of one per
// string. An arena is never written below its length, so the strings stay
// immutable; each keeps its arena alive.
//
// The keys and strings of a subtree converted to structpb values go to
// the arena, which reserve sizes to them exactly; the strings read one by
// one (typed fields) go to loose chunks of up to looseChunk bytes.
func (r *Reader) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if cap(r.arena)-len(r.arena) >= len(b) {
		return appendString(&r.arena, b)
	}
	if cap(r.loose)-len(r.loose) < len(b) {
		// No larger than the body, which holds all the text there is.
		r.loose = make([]byte, 0, max(len(b), min(r.bodyLen, looseChunk)))
	}
	return appendString(&r.loose, b)
}

// looseChunk is the size of a chunk for strings read one by one: the
// typed fields of a Pipedrive meta take 100-200 bytes.
const looseChunk = 256

// appendString appends b to *chunk, which has room for it, and returns the
// copy as a string.
func appendString(chunk *[]byte, b []byte) string {
	start := len(*chunk)
	*chunk = append(*chunk, b...)
	return unsafe.String(&(*chunk)[start], len(b))
}

// Err returns the first error met, or nil.
func (r *Reader) Err() *Rejection { return r.err }

// Enter descends into the object at key for error paths.
func (r *Reader) Enter(key string) { r.path = append(r.path, pathElem{key: key, index: -1}) }

// EnterIndex descends into array element i for error paths.
func (r *Reader) EnterIndex(i int) { r.path = append(r.path, pathElem{index: i}) }

// Leave undoes the last Enter or EnterIndex.
func (r *Reader) Leave() { r.path = r.path[:len(r.path)-1] }

// Path renders the current path with key appended, e.g. `messageHistory[2].author.id`.
func (r *Reader) Path(key string) string {
	var b strings.Builder
	for _, e := range r.path {
		if e.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(e.key)
	}
	if key != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key)
	}
	return b.String()
}

// Fail records a rejection at key (relative to the current path) unless an
// earlier one was recorded.
func (r *Reader) Fail(code hookstreamv1.RejectionCode, key, format string, args ...any) {
	if r.err == nil {
		r.err = Reject(code, r.Path(key), format, args...)
	}
}

func (r *Reader) wrongType(key, want string, v *fastjson.Value) {
	r.Fail(codeShape, key, "must be %s, got %s", want, v.Type())
}

// Require records an error when key is missing from parent (null counts
// as present; the field's own read decides whether null is allowed).
func (r *Reader) Require(parent *fastjson.Value, key string) {
	if parent != nil && parent.Get(key) == nil {
		r.Fail(codeField, key, "is required")
	}
}

// Object returns the object at key of parent, or nil when it is missing or
// null. Anything else is an error.
func (r *Reader) Object(parent *fastjson.Value, key string) *fastjson.Value {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeObject:
		return v
	case fastjson.TypeNull:
		return nil
	}
	r.wrongType(key, "an object", v)
	return nil
}

// Array returns the array at key of parent, or nil when it is missing or
// null. Anything else is an error.
func (r *Reader) Array(parent *fastjson.Value, key string) []*fastjson.Value {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeArray:
		a, _ := v.Array()
		return a
	case fastjson.TypeNull:
		return nil
	}
	r.wrongType(key, "an array", v)
	return nil
}

// String returns the string at key of parent; missing and null give "".
func (r *Reader) String(parent *fastjson.Value, key string) string {
	s, _ := r.OptString(parent, key)
	return s
}

// OptString returns the string at key of parent and whether it was present
// and not null.
func (r *Reader) OptString(parent *fastjson.Value, key string) (string, bool) {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return "", false
	}
	switch v.Type() {
	case fastjson.TypeString:
		return r.str(key, v), true
	case fastjson.TypeNull:
		return "", false
	}
	r.wrongType(key, "a string", v)
	return "", false
}

// OptText is OptString that also accepts numbers and booleans, returned in
// their JSON spelling. It suits fields a vendor documents loosely.
func (r *Reader) OptText(parent *fastjson.Value, key string) (string, bool) {
	return r.OptTextValue(key, parent.Get(key))
}

// OptTextValue is OptText for a value already looked up (nil when
// missing); key names it in errors.
func (r *Reader) OptTextValue(key string, v *fastjson.Value) (string, bool) {
	if v == nil || r.err != nil {
		return "", false
	}
	switch v.Type() {
	case fastjson.TypeString:
		return r.str(key, v), true
	case fastjson.TypeNull:
		return "", false
	case fastjson.TypeNumber:
		if _, ok := r.number(key, v); !ok {
			return "", false
		}
		return r.intern(r.scratch), true
	case fastjson.TypeTrue:
		return "true", true
	case fastjson.TypeFalse:
		return "false", true
	}
	r.wrongType(key, "a string, number or boolean", v)
	return "", false
}

// ID returns the id at key of parent: a string, or an integer sent as a
// number. Missing and null give "".
func (r *Reader) ID(parent *fastjson.Value, key string) string {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return ""
	}
	return r.IDValue(key, v)
}

// IDValue is ID for a value already looked up; key names it in errors.
func (r *Reader) IDValue(key string, v *fastjson.Value) string {
	switch v.Type() {
	case fastjson.TypeString:
		return r.str(key, v)
	case fastjson.TypeNull:
		return ""
	case fastjson.TypeNumber:
		// An integer id is kept as its digits, however large: it is an
		// identifier, not a quantity.
		r.scratch = v.MarshalTo(r.scratch[:0])
		if !validNumber(r.scratch) || bytes.ContainsAny(r.scratch, ".eE") {
			r.Fail(codeShape, key, "must be a string or an integer")
			return ""
		}
		return r.intern(r.scratch)
	}
	r.wrongType(key, "a string or an integer", v)
	return ""
}

// Bool returns the boolean at key of parent; missing and null give false.
func (r *Reader) Bool(parent *fastjson.Value, key string) bool {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse, fastjson.TypeNull:
		return false
	}
	r.wrongType(key, "a boolean", v)
	return false
}

// OptBool returns the boolean at key of parent, also accepting the strings
// "true" and "false", and whether one was present.
func (r *Reader) OptBool(parent *fastjson.Value, key string) (bool, bool) {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return false, false
	}
	switch v.Type() {
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	case fastjson.TypeNull:
		return false, false
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		switch string(b) {
		case "true", "1":
			return true, true
		case "false", "0":
			return false, true
		}
	}
	r.wrongType(key, "a boolean", v)
	return false, false
}

// Int64 returns the integer at key of parent (a number or a numeric
// string); missing and null give 0.
func (r *Reader) Int64(parent *fastjson.Value, key string) int64 {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return 0
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return 0
	case fastjson.TypeNumber:
		if _, ok := r.number(key, v); !ok {
			return 0
		}
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		r.scratch = append(r.scratch[:0], b...)
	default:
		r.wrongType(key, "an integer", v)
		return 0
	}
	n, err := strconv.ParseInt(string(r.scratch), 10, 64)
	if err == nil {
		return n
	}
	// A whole number written otherwise (2.0, 1e3) is that integer, where
	// a float64 holds it exactly.
	switch f, ferr := strconv.ParseFloat(string(r.scratch), 64); {
	case ferr == nil && f == math.Trunc(f) && math.Abs(f) <= 1<<53:
		return int64(f)
	case ferr == nil && f != math.Trunc(f):
		r.Fail(codeShape, key, "must be a whole number")
	default:
		r.Fail(codeShape, key, "must be an integer that fits in 64 bits")
	}
	return 0
}

// str copies a JSON string value out of the parser's buffer.
func (r *Reader) str(key string, v *fastjson.Value) string {
	b, _ := v.StringBytes()
	// A guard: Parse writes escaped lone surrogates as U+FFFD, and fastjson
	// decodes every other escape to valid UTF-8.
	if r.checkUTF8 && !utf8.Valid(b) {
		r.Fail(hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_UTF8, key, "string is not valid UTF-8")
		return ""
	}
	return r.intern(b)
}

// number checks that v is a finite JSON number, leaves its text in
// r.scratch and returns its value.
func (r *Reader) number(key string, v *fastjson.Value) (float64, bool) {
	r.scratch = v.MarshalTo(r.scratch[:0])
	if !validNumber(r.scratch) {
		r.Fail(codeShape, key, "is not a valid JSON number")
		return 0, false
	}
	f, err := strconv.ParseFloat(string(r.scratch), 64)
	if err != nil {
		r.Fail(codeShape, key, "number is out of range")
		return 0, false
	}
	return f, true
}

// IsJSONNumber reports whether s is written as a JSON number, so a numeric
// string can be told from text like "0x10", " 1" or "Inf".
func IsJSONNumber(s string) bool { return validNumber(s) }

// validNumber reports whether b follows the JSON number grammar (fastjson
// also accepts forms like `1-2`, `inf` and `nan`).
func validNumber[T string | []byte](b T) bool {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start {
			return false
		}
	}
	return i == len(b)
}

// Value converts the JSON value at key of parent to a structpb value; a
// missing key gives nil, null gives a null value.
func (r *Reader) Value(parent *fastjson.Value, key string) *structpb.Value {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return nil
	}
	r.reserve(v, nil)
	r.Enter(key)
	out := r.value(v)
	r.Leave()
	return out
}

// ValueOf converts v to a structpb value; key names it in errors.
func (r *Reader) ValueOf(key string, v *fastjson.Value) *structpb.Value {
	r.reserve(v, nil)
	r.Enter(key)
	out := r.value(v)
	r.Leave()
	return out
}

// Struct converts the object at key of parent to a Struct; missing and
// null give nil.
func (r *Reader) Struct(parent *fastjson.Value, key string) *structpb.Struct {
	o := r.Object(parent, key)
	if o == nil {
		return nil
	}
	r.reserve(o, nil)
	r.Enter(key)
	s := r.structOf(o, nil, objectLen(o))
	r.Leave()
	return s
}

// Extra collects the members of obj whose keys known does not accept into a
// Struct, so fields a schema does not model are kept rather than dropped.
// It returns nil when there are none.
func (r *Reader) Extra(obj *fastjson.Value, known func(key []byte) bool) *structpb.Struct {
	if obj == nil || r.err != nil {
		return nil
	}
	o, _ := obj.Object()
	n := 0
	o.Visit(func(k []byte, _ *fastjson.Value) {
		if !known(k) {
			n++
		}
	})
	if n == 0 {
		return nil
	}
	r.reserve(obj, known)
	return r.structOf(obj, known, n)
}

// structOf converts the members of obj that skip (if not nil) does not
// accept; size is how many those are.
func (r *Reader) structOf(obj *fastjson.Value, skip func([]byte) bool, size int) *structpb.Struct {
	s := &structpb.Struct{}
	r.fillStruct(s, obj, skip, size)
	return s
}

// fillStruct is structOf into s.
func (r *Reader) fillStruct(s *structpb.Struct, obj *fastjson.Value, skip func([]byte) bool, size int) {
	o, _ := obj.Object()
	s.Fields = make(map[string]*structpb.Value, size)
	o.Visit(func(k []byte, v *fastjson.Value) {
		if r.err != nil || (skip != nil && skip(k)) {
			return
		}
		if r.checkUTF8 && !utf8.Valid(k) {
			r.Fail(hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_UTF8, "", "object key is not valid UTF-8")
			return
		}
		key := r.intern(k)
		r.Enter(key)
		s.Fields[key] = r.value(v)
		r.Leave()
	})
}

// objectLen is the number of members of the object v.
func objectLen(v *fastjson.Value) int {
	o, _ := v.Object()
	return o.Len()
}

func (r *Reader) value(v *fastjson.Value) *structpb.Value {
	if r.err != nil {
		return nil
	}
	switch v.Type() {
	case fastjson.TypeNull:
		return r.slab.null()
	case fastjson.TypeTrue:
		return r.slab.boolean(true)
	case fastjson.TypeFalse:
		return r.slab.boolean(false)
	case fastjson.TypeString:
		return r.slab.str(r.str("", v))
	case fastjson.TypeNumber:
		f, _ := r.number("", v)
		return r.slab.number(f)
	case fastjson.TypeObject:
		// The value, its kind and the Struct in one allocation.
		c := &struct {
			v structpb.Value
			k structpb.Value_StructValue
			s structpb.Struct
		}{}
		r.fillStruct(&c.s, v, nil, objectLen(v))
		c.k.StructValue = &c.s
		c.v.Kind = &c.k
		return &c.v
	}
	a, _ := v.Array() // the only type left
	c := &struct {
		v structpb.Value
		k structpb.Value_ListValue
		l structpb.ListValue
	}{}
	c.l.Values = make([]*structpb.Value, len(a))
	for i, e := range a {
		r.EnterIndex(i)
		c.l.Values[i] = r.value(e)
		r.Leave()
	}
	c.k.ListValue = &c.l
	c.v.Kind = &c.k
	return &c.v
}

// valueSlab hands out structpb values for JSON scalars, each allocated
// together with its kind wrapper, from chunks: converting a large object
// costs a few allocations instead of two per member. Chunks are never
// reallocated, so handed-out pointers stay valid; each element belongs to
// exactly one value. Before a subtree is converted, reserve sizes the
// chunks to the scalars it holds, so no chunk is larger than needed: the
// unused tails of fixed-size chunks were a quarter of the bytes a
// Pipedrive event allocated, and the garbage collector's cost follows the
// bytes.
type valueSlab struct {
	strs  []scalar[structpb.Value_StringValue]
	nums  []scalar[structpb.Value_NumberValue]
	bools []scalar[structpb.Value_BoolValue]
	nulls []scalar[structpb.Value_NullValue]
}

// scalar is a Value whose Kind points at k.
type scalar[K any] struct {
	v structpb.Value
	k K
}

// slabChunk is the chunk size when a value is taken without a reservation
// covering it.
const slabChunk = 16

// slabCounts is how many scalars of each kind a subtree holds, and how
// many bytes its keys and strings take.
type slabCounts struct {
	strs, nums, bools, nulls int
	text                     int
}

func (c *slabCounts) add(v *fastjson.Value) {
	switch v.Type() {
	case fastjson.TypeString:
		c.strs++
		b, _ := v.StringBytes()
		c.text += len(b)
	case fastjson.TypeNumber:
		c.nums++
	case fastjson.TypeTrue, fastjson.TypeFalse:
		c.bools++
	case fastjson.TypeNull:
		c.nulls++
	case fastjson.TypeObject:
		o, _ := v.Object()
		o.Visit(func(k []byte, m *fastjson.Value) {
			c.text += len(k)
			c.add(m)
		})
	case fastjson.TypeArray:
		a, _ := v.Array()
		for _, e := range a {
			c.add(e)
		}
	}
}

// reserve makes room in the slab for the scalars of v, and in the arena
// for its keys and strings, leaving out the members of an object v whose
// keys skip accepts.
func (r *Reader) reserve(v *fastjson.Value, skip func([]byte) bool) {
	var c slabCounts
	if o, err := v.Object(); err == nil {
		o.Visit(func(k []byte, m *fastjson.Value) {
			if skip == nil || !skip(k) {
				c.text += len(k)
				c.add(m)
			}
		})
	} else {
		c.add(v)
	}
	// Strings go to the arena while it has room, else to the loose
	// chunk, so room in either will do (a small object's few keys often
	// fit in the loose chunk's tail).
	if cap(r.loose)-len(r.loose) < c.text {
		grow(&r.arena, c.text)
	}
	grow(&r.slab.strs, c.strs)
	grow(&r.slab.nums, c.nums)
	grow(&r.slab.bools, c.bools)
	grow(&r.slab.nulls, c.nulls)
}

// grow starts a chunk of exactly n elements when *chunk has no room for n
// more.
func grow[T any](chunk *[]T, n int) {
	if cap(*chunk)-len(*chunk) < n {
		*chunk = make([]T, 0, n)
	}
}

// take returns a pointer to a fresh zero element of *chunk, starting a new
// chunk when the current one is full.
func take[T any](chunk *[]T) *T {
	if len(*chunk) == cap(*chunk) {
		*chunk = make([]T, 0, slabChunk)
	}
	*chunk = (*chunk)[:len(*chunk)+1]
	return &(*chunk)[len(*chunk)-1]
}

func (s *valueSlab) str(v string) *structpb.Value {
	e := take(&s.strs)
	e.k.StringValue = v
	e.v.Kind = &e.k
	return &e.v
}

func (s *valueSlab) number(f float64) *structpb.Value {
	e := take(&s.nums)
	e.k.NumberValue = f
	e.v.Kind = &e.k
	return &e.v
}

func (s *valueSlab) null() *structpb.Value {
	e := take(&s.nulls)
	e.v.Kind = &e.k
	return &e.v
}

func (s *valueSlab) boolean(b bool) *structpb.Value {
	e := take(&s.bools)
	e.k.BoolValue = b
	e.v.Kind = &e.k
	return &e.v
}
