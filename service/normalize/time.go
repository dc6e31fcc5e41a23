package normalize

import (
	"math"
	"strconv"
	"time"

	"github.com/valyala/fastjson"
)

// Layouts of textual timestamps seen from the vendors (vendors.md): RFC 3339
// with or without fractions (Pipedrive v2, ClinchPad), `YYYY-MM-DD
// HH:MM:SS` in UTC (Pipedrive v1 objects, older v2 product and user
// events), ISO 8601 without a zone, and the `+0000` offset style of Closer's
// draft business events.
var timeLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02 15:04:05",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z0700",
}

// minTime and maxTime bound the timestamps we accept: a vendor event cannot
// predate 1990, and protobuf timestamps end at year 9999.
var (
	minTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Time reads the timestamp at key of parent: a JSON number or numeric
// string holding Unix epoch seconds, milliseconds or microseconds (told
// apart by magnitude), or a string in one of the layouts above. It returns
// the zero time when the key is missing or null.
func (r *Reader) Time(parent *fastjson.Value, key string) time.Time {
	v := parent.Get(key)
	if v == nil || r.err != nil {
		return time.Time{}
	}
	var t time.Time
	var ok bool
	switch v.Type() {
	case fastjson.TypeNull:
		return time.Time{}
	case fastjson.TypeNumber:
		f, valid := r.number(key, v)
		if !valid {
			return time.Time{}
		}
		t, ok = FromEpoch(f)
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		t, ok = ParseTime(string(b))
	default:
		r.wrongType(key, "a timestamp (number or string)", v)
		return time.Time{}
	}
	if !ok {
		r.Fail(codeShape, key, "is not a timestamp in a known format (RFC 3339, YYYY-MM-DD HH:MM:SS, or Unix epoch s/ms/µs after 1990)")
		return time.Time{}
	}
	return t
}

// ParseTime parses a textual timestamp in any accepted layout, or a
// numeric string of epoch seconds, milliseconds or microseconds.
func ParseTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	if c := s[0]; c >= '0' && c <= '9' && len(s) < 20 && !containsByte(s, '-') {
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return FromEpoch(f)
		}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return bounded(t.UTC())
		}
	}
	return time.Time{}, false
}

// FromEpoch interprets f as Unix epoch seconds, milliseconds or
// microseconds, whichever puts it after 1990: 1e11 seconds is year 5138 and
// 1e14 milliseconds is year 5138, so the ranges do not overlap.
func FromEpoch(f float64) (time.Time, bool) {
	if math.IsNaN(f) || f <= 0 || f >= 1e18 {
		return time.Time{}, false
	}
	var t time.Time
	switch {
	case f < 1e11:
		sec, frac := math.Modf(f)
		t = time.Unix(int64(sec), int64(math.Round(frac*1e9)))
	case f < 1e14:
		ms := int64(f)
		t = time.UnixMilli(ms)
	case f < 1e17:
		t = time.UnixMicro(int64(f))
	default:
		t = time.Unix(0, int64(f))
	}
	return bounded(t.UTC())
}

func bounded(t time.Time) (time.Time, bool) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, false
	}
	return t, true
}

func containsByte(s string, c byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return true
		}
	}
	return false
}
