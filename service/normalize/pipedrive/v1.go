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
	case "v", "action", "object", "id", "company_id", "user_id", "host", "timestamp", "timestamp_micro",
		"permitted_user_ids", "trans_pending", "is_bulk_update", "pipedrive_service_name", "change_source", "webhook_id":
		return true
	}
	return false
}

func decodeV1(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.PipedriveChangeV1 {
	p := &hookstreamv1.PipedriveChangeV1{
		Event:          r.String(root, "event"),
		Current:        r.Value(root, "current"),
		Previous:       r.Value(root, "previous"),
		MatchesFilters: r.Struct(root, "matches_filters"),
	}
	if retry := r.Int64(root, "retry"); retry > 0 && retry < math.MaxUint32 {
		p.Retry = uint32(retry)
	}
	r.Require(root, "meta")
	if m := r.Object(root, "meta"); m != nil {
		r.Enter("meta")
		r.Require(m, "action")
		r.Require(m, "object")
		r.Require(m, "id")
		meta := &hookstreamv1.PipedriveMetaV1{
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
		// Epoch seconds and microseconds; Time accepts either magnitude.
		if t := r.Time(m, "timestamp"); !t.IsZero() {
			meta.Timestamp = t.Unix()
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
	return p
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

func buildV1(in normalize.Input, p *hookstreamv1.PipedriveChangeV1) *hookstreamv1.Event {
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

	occurred := meta.GetTimestampMicro()
	at := normalize.FromMicros(occurred)
	if occurred == 0 {
		at = normalize.FromMillis(meta.GetTimestamp() * 1000)
		occurred = meta.GetTimestamp() * 1_000_000
	}
	ev := &hookstreamv1.Event{
		// The v1 dedup key: which subscription, which event, which object,
		// when. The retry counter is deliberately not part of it.
		Id: normalize.EventID(in.Source, hookstreamv1.Vendor_VENDOR_PIPEDRIVE, "v1",
			meta.GetWebhookId(), vendorType, meta.GetId(), strconv.FormatInt(occurred, 10)),
		Source:          in.Source,
		Vendor:          hookstreamv1.Vendor_VENDOR_PIPEDRIVE,
		Type:            normalize.Type(entity, canonical),
		VendorType:      vendorType,
		OccurredAt:      timestamppb.New(at),
		ReceivedAt:      timestamppb.New(in.ReceivedAt),
		Subject:         &hookstreamv1.Subject{Kind: entity, Id: meta.GetId(), Name: displayName(state)},
		Actor:           actor(meta.GetUserId()),
		Contact:         contactOf(entity, state),
		TenantId:        meta.GetCompanyId(),
		DeliveryAttempt: p.GetRetry() + 1,
		Payload:         &hookstreamv1.Event_PipedriveV1{PipedriveV1: p},
	}
	if canonical == "updated" || canonical == "merged" {
		ev.Changes = diffV1(previous, current)
	}
	if canonical == "merged" {
		ev.Merge = &hookstreamv1.Merge{MergedIntoId: meta.GetId()}
	}
	return ev
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

// diffV1 lists the fields whose values differ between the full previous
// and current states v1 sends. Custom fields are reported as
// `custom_fields.<hash>`, as in v2.
func diffV1(previous, current *structpb.Struct) []*hookstreamv1.Change {
	if previous == nil || current == nil {
		return nil
	}
	keys := sortedKeys(current)
	for k := range previous.GetFields() {
		if _, ok := current.GetFields()[k]; !ok {
			keys = append(keys, k)
		}
	}
	var changes []*hookstreamv1.Change
	for _, k := range keys {
		oldV, hadOld := previous.GetFields()[k]
		newV, hasNew := current.GetFields()[k]
		if hadOld && hasNew && valueEqual(oldV, newV) {
			continue
		}
		field := k
		if isCustomFieldKey(k) {
			field = "custom_fields." + k
		}
		changes = append(changes, &hookstreamv1.Change{Field: field, OldValue: oldV, NewValue: newV})
	}
	sortChanges(changes)
	return changes
}

// valueEqual compares two JSON values structurally.
func valueEqual(a, b *structpb.Value) bool {
	switch x := a.GetKind().(type) {
	case *structpb.Value_NullValue:
		_, ok := b.GetKind().(*structpb.Value_NullValue)
		return ok
	case *structpb.Value_StringValue:
		y, ok := b.GetKind().(*structpb.Value_StringValue)
		return ok && x.StringValue == y.StringValue
	case *structpb.Value_NumberValue:
		y, ok := b.GetKind().(*structpb.Value_NumberValue)
		return ok && x.NumberValue == y.NumberValue
	case *structpb.Value_BoolValue:
		y, ok := b.GetKind().(*structpb.Value_BoolValue)
		return ok && x.BoolValue == y.BoolValue
	case *structpb.Value_ListValue:
		y, ok := b.GetKind().(*structpb.Value_ListValue)
		if !ok || len(x.ListValue.GetValues()) != len(y.ListValue.GetValues()) {
			return false
		}
		for i, v := range x.ListValue.GetValues() {
			if !valueEqual(v, y.ListValue.GetValues()[i]) {
				return false
			}
		}
		return true
	case *structpb.Value_StructValue:
		y, ok := b.GetKind().(*structpb.Value_StructValue)
		if !ok || len(x.StructValue.GetFields()) != len(y.StructValue.GetFields()) {
			return false
		}
		for k, v := range x.StructValue.GetFields() {
			w, ok := y.StructValue.GetFields()[k]
			if !ok || !valueEqual(v, w) {
				return false
			}
		}
		return true
	}
	return a.GetKind() == nil && b.GetKind() == nil
}

// formatNumber renders integral numbers without an exponent or fraction.
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}
