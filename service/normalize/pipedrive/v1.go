package pipedrive

import (
	"math"
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

func isV1TopLevel(k []byte) bool {
	switch string(k) {
	case "v", "event", "meta", "current", "previous", "retry", "matches_filters":
		return true
	}
	return false
}

func isV1Meta(k []byte) bool {
	switch string(k) {
	case "v", "action", "object", "id", "company_id", "user_id", "host", "timestamp", "timestamp_milli", "timestamp_micro",
		"permitted_user_ids", "trans_pending", "is_bulk_update", "pipedrive_service_name", "change_source", "webhook_id":
		return true
	}
	return false
}

// decodeV1 reads a v1 payload, returned as the event's payload field. The
// payload and its meta share one allocation with it.
func decodeV1(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.Event_PipedriveV1 {
	c := &struct {
		payload hookstreamv1.Event_PipedriveV1
		p       hookstreamv1.PipedriveChangeV1
		meta    hookstreamv1.PipedriveMetaV1
	}{}
	c.payload.PipedriveV1 = &c.p
	p := &c.p
	p.Event = r.String(root, "event")
	p.Current = r.Value(root, "current")
	p.Previous = r.Value(root, "previous")
	p.MatchesFilters = r.Struct(root, "matches_filters")
	if retry := r.Int64(root, "retry"); retry > 0 && retry < math.MaxUint32 {
		p.Retry = uint32(retry)
	}
	r.Require(root, "meta")
	if m := r.Object(root, "meta"); m != nil {
		r.Enter("meta")
		r.Require(m, "action")
		r.Require(m, "object")
		r.Require(m, "id")
		meta := &c.meta
		*meta = hookstreamv1.PipedriveMetaV1{
			Action:           r.String(m, "action"),
			Object:           r.String(m, "object"),
			Id:               r.ID(m, "id"),
			CompanyId:        r.ID(m, "company_id"),
			UserId:           r.ID(m, "user_id"),
			Host:             r.String(m, "host"),
			TransPending:     r.Bool(m, "trans_pending"),
			IsBulkUpdate:     r.Bool(m, "is_bulk_update"),
			ChangeSource:     r.String(m, "change_source"),
			WebhookId:        r.ID(m, "webhook_id"),
			PermittedUserIds: ids(r, m, "permitted_user_ids"),
		}
		// Epoch seconds, milliseconds (deliveries from before
		// timestamp_micro existed) and microseconds; Time accepts any
		// magnitude in any of them.
		if t := r.Time(m, "timestamp"); !t.IsZero() {
			meta.Timestamp = t.Unix()
		}
		if t := r.Time(m, "timestamp_milli"); !t.IsZero() {
			meta.TimestampMilli = t.UnixMilli()
		}
		if t := r.Time(m, "timestamp_micro"); !t.IsZero() {
			meta.TimestampMicro = t.UnixMicro()
		}
		// Sent as a service name, or false/null when there is none.
		if sn := m.Get("pipedrive_service_name"); sn != nil && sn.Type() == fastjson.TypeString {
			meta.PipedriveServiceName = r.String(m, "pipedrive_service_name")
		}
		meta.Extra = r.Extra(m, isV1Meta)
		p.Meta = meta
		r.Leave()
	}
	p.Extra = r.Extra(root, isV1TopLevel)
	return &c.payload
}

// ids reads an array of ids sent as numbers or strings.
func ids(r *normalize.Reader, parent *fastjson.Value, key string) []string {
	a := r.Array(parent, key)
	if len(a) == 0 {
		return nil
	}
	out := make([]string, 0, len(a))
	r.Enter(key)
	for i, v := range a {
		r.EnterIndex(i)
		out = append(out, r.IDValue("", v))
		r.Leave()
	}
	r.Leave()
	return out
}

func buildV1(in normalize.Input, payload *hookstreamv1.Event_PipedriveV1) *hookstreamv1.Event {
	p := payload.PipedriveV1
	meta := p.GetMeta()
	action, object := meta.GetAction(), meta.GetObject()
	if a, o, ok := strings.Cut(p.GetEvent(), "."); ok && (action == "" || object == "") {
		action, object = a, o
	}
	vendorType := p.GetEvent()
	if vendorType == "" {
		vendorType = action + "." + object
	}
	entity := normalize.Snake(object)
	canonical := Action(action)

	// The v1 object state: user events send one-element arrays.
	current, previous := objectOf(p.GetCurrent()), objectOf(p.GetPrevious())
	state := current
	if state == nil {
		state = previous // deletes carry the last state in previous
	}

	// The most precise time sent is the event time and part of the dedup
	// key, so two edits of one object within a second stay two events.
	occurred := occurredMicros(meta)
	at := normalize.FromMicros(occurred)
	ev := newEvent(in, meta.GetUserId())
	// The v1 dedup key: which subscription, which event, which object,
	// when. The retry counter is deliberately not part of it.
	ev.Id = normalize.EventID(in.Source, hookstreamv1.Vendor_VENDOR_PIPEDRIVE, "v1",
		meta.GetWebhookId(), vendorType, meta.GetId(), strconv.FormatInt(occurred, 10))
	ev.Source = in.Source
	ev.Vendor = hookstreamv1.Vendor_VENDOR_PIPEDRIVE
	ev.Type = normalize.Type(entity, canonical)
	ev.VendorType = vendorType
	ev.OccurredAt = timestamppb.New(at)
	ev.Subject.Kind, ev.Subject.Id, ev.Subject.Name = entity, meta.GetId(), displayName(state)
	ev.Contact = contactOf(entity, state)
	ev.TenantId = meta.GetCompanyId()
	ev.DeliveryAttempt = p.GetRetry() + 1
	ev.Payload = payload
	switch canonical {
	case "updated":
		ev.Changes = diffV1(previous, current)
	case "merged":
		// current is the surviving record and previous the absorbed one:
		// two different records, so there is nothing to diff.
		ev.Merge = &hookstreamv1.Merge{MergedIntoId: meta.GetId(), MergedFromId: absorbedID(meta.GetId(), current, previous)}
	}
	return ev
}

// occurredMicros is the event time in Unix microseconds from the most
// precise of meta.timestamp_micro, timestamp_milli and timestamp.
func occurredMicros(meta *hookstreamv1.PipedriveMetaV1) int64 {
	switch {
	case meta.GetTimestampMicro() > 0:
		return meta.GetTimestampMicro()
	case meta.GetTimestampMilli() > 0:
		return meta.GetTimestampMilli() * 1_000
	}
	return meta.GetTimestamp() * 1_000_000
}

// absorbedID is the id of the record a v1 merge absorbed: the survivor's
// merge_what_id, else the id of the record in previous when it is not the
// survivor.
func absorbedID(survivor string, current, previous *structpb.Struct) string {
	if id := scalarText(current.GetFields()["merge_what_id"]); id != "" {
		return id
	}
	if id := scalarText(previous.GetFields()["id"]); id != survivor {
		return id
	}
	return ""
}

// objectOf returns the object a v1 current/previous value holds: the value
// itself, or the first element of a user event's array.
func objectOf(v *structpb.Value) *structpb.Struct {
	if s := v.GetStructValue(); s != nil {
		return s
	}
	if l := v.GetListValue().GetValues(); len(l) > 0 {
		return l[0].GetStructValue()
	}
	return nil
}

// diffV1 lists the fields whose values really changed between the whole
// previous and current objects v1 sends. Pipedrive's object shape drifts
// between API versions and even between the two halves of one delivery,
// so only a difference in data counts:
//   - a key present on one side only is a change of shape, not of data,
//     and is skipped (at any depth);
//   - a link sent as a bare id on one side and expanded on the other
//     (`"user_id": 7` and `"user_id": {"id": 7, "name": …, "value": 7}`), or
//     expanded on both sides with the same id, is the same link;
//   - values equal as JSON are equal: a number and a string holding the
//     same number, and the empty values null, [] and {}.
//
// Custom fields are reported as `custom_fields.<hash>`, as in v2.
func diffV1(previous, current *structpb.Struct) []*hookstreamv1.Change {
	if previous == nil || current == nil {
		return nil
	}
	var buf [8]change
	found := buf[:0]
	for k, newV := range current.GetFields() {
		oldV, ok := previous.GetFields()[k]
		if !ok || sameV1(oldV, newV) || isLink(k) && sameLink(oldV, newV) {
			continue
		}
		field := k
		if isCustomFieldKey(k) {
			field = "custom_fields." + k
		}
		found = append(found, change{field, oldV, newV})
	}
	return newChanges(found)
}

// isLink reports whether a v1 object key holds a link to another record
// (`user_id`, `person_id`, `org_id`, `creator_user_id`, …), which Pipedrive
// sends either as a bare id or expanded into an object.
func isLink(k string) bool { return strings.HasSuffix(k, "_id") }

// sameLink reports whether two link values point at the same record.
func sameLink(a, b *structpb.Value) bool {
	x, y := linkID(a), linkID(b)
	return x != nil && y != nil && sameV1(x, y)
}

// linkID is the id a link value carries: the value itself when it is a
// number or string, else the `value` (Pipedrive's expanded links) or `id`
// member of an object.
func linkID(v *structpb.Value) *structpb.Value {
	if isScalarID(v) {
		return v
	}
	f := v.GetStructValue().GetFields()
	for _, k := range [...]string{"value", "id"} {
		if id := f[k]; isScalarID(id) {
			return id
		}
	}
	return nil
}

func isScalarID(v *structpb.Value) bool {
	switch v.GetKind().(type) {
	case *structpb.Value_NumberValue, *structpb.Value_StringValue:
		return true
	}
	return false
}

// sameV1 compares two v1 values by the rules of diffV1.
func sameV1(a, b *structpb.Value) bool {
	if isEmpty(a) || isEmpty(b) {
		return isEmpty(a) && isEmpty(b)
	}
	switch x := a.GetKind().(type) {
	case *structpb.Value_StringValue:
		switch y := b.GetKind().(type) {
		case *structpb.Value_StringValue:
			return x.StringValue == y.StringValue
		case *structpb.Value_NumberValue:
			return numericEqual(x.StringValue, y.NumberValue)
		case *structpb.Value_StructValue:
			return sameLink(a, b)
		}
	case *structpb.Value_NumberValue:
		switch y := b.GetKind().(type) {
		case *structpb.Value_NumberValue:
			return x.NumberValue == y.NumberValue
		case *structpb.Value_StringValue:
			return numericEqual(y.StringValue, x.NumberValue)
		case *structpb.Value_StructValue:
			return sameLink(a, b)
		}
	case *structpb.Value_BoolValue:
		y, ok := b.GetKind().(*structpb.Value_BoolValue)
		return ok && x.BoolValue == y.BoolValue
	case *structpb.Value_ListValue:
		y, ok := b.GetKind().(*structpb.Value_ListValue)
		if !ok || len(x.ListValue.GetValues()) != len(y.ListValue.GetValues()) {
			return false
		}
		for i, v := range x.ListValue.GetValues() {
			if !sameV1(v, y.ListValue.GetValues()[i]) {
				return false
			}
		}
		return true
	case *structpb.Value_StructValue:
		switch y := b.GetKind().(type) {
		case *structpb.Value_StructValue:
			// Members on one side only are shape drift, as at the top.
			for k, v := range x.StructValue.GetFields() {
				if w, ok := y.StructValue.GetFields()[k]; ok && !sameV1(v, w) {
					return false
				}
			}
			return true
		case *structpb.Value_NumberValue, *structpb.Value_StringValue:
			return sameLink(a, b)
		}
	}
	return false
}

// isEmpty reports whether v is null, [] or {} (or missing).
func isEmpty(v *structpb.Value) bool {
	switch k := v.GetKind().(type) {
	case nil, *structpb.Value_NullValue:
		return true
	case *structpb.Value_ListValue:
		return len(k.ListValue.GetValues()) == 0
	case *structpb.Value_StructValue:
		return len(k.StructValue.GetFields()) == 0
	}
	return false
}

// numericEqual reports whether s is a JSON number equal to f, as when
// Pipedrive sends `"11149162"` on one side and `11149162` on the other.
func numericEqual(s string, f float64) bool {
	if !normalize.IsJSONNumber(s) {
		return false
	}
	g, err := strconv.ParseFloat(s, 64)
	return err == nil && g == f
}

// formatNumber renders integral numbers as plain digits, never with an
// exponent or a fraction: an id is text to its readers. Up to 2^53 a JSON
// number is exact, so the digits are the ones sent; past that a float64
// has already rounded it, and the shortest digits that name the same
// value are given. Other numbers keep their shortest form.
func formatNumber(f float64) string {
	switch {
	case f != math.Trunc(f) || math.IsInf(f, 0):
		return strconv.FormatFloat(f, 'g', -1, 64)
	case math.Abs(f) <= 1<<53:
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
