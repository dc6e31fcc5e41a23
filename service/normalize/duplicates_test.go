package normalize

import (
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fastjson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// A member named twice in one object with different values is refused,
// wherever it is, and named by its path; the same name in two objects, or
// the same value twice, is no duplicate.
func TestParseRefusesDuplicateMembers(t *testing.T) {
	var many strings.Builder
	for i := range 40 {
		fmt.Fprintf(&many, `"k%d": %d, `, i, i)
	}
	for body, want := range map[string]string{
		`{"entity": "deal", "entity": "person"}`:                                         "entity",
		`{"meta": {"id": 1, "action": "change", "id": 2}}`:                               "meta.id",
		`{"data": {"items": [{"a": 1}, {"b": 1, "b": 2}]}}`:                              "data.items[1].b",
		`{"x": [[{"y": 1, "y": 2}]]}`:                                                    "x[0][0].y",
		`{"big": {` + many.String() + `"k7": 8}}`:                                        "big.k7",
		`{"a": {"id": 1}, "b": {"id": 1}, "c": [{"id": 1}, {"id": 2}]}`:                  "",
		`{"` + strings.Repeat("n", 300) + `": 1, "` + strings.Repeat("n", 300) + `": 2}`: strings.Repeat("n", 128) + "…",
	} {
		var pool fastjson.ParserPool
		_, p, err := Parse(&pool, []byte(body))
		if want == "" {
			if err != nil {
				t.Errorf("%.60s: %v, want no rejection", body, err)
			}
			if p != nil {
				pool.Put(p)
			}
			continue
		}
		rej := AsRejection(err)
		if rej == nil || rej.Code != hookstreamv1.RejectionCode_REJECTION_CODE_MALFORMED_JSON || rej.Field != want {
			t.Errorf("%.60s: %v, want MALFORMED_JSON at %.40s", body, err, want)
		}
	}
}
