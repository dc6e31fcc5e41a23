package pipedrive

import (
	"math"
	"time"

	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

func isV2TopLevel(k []byte) bool {
	switch string(k) {
	case "meta", "data", "previous":
		return true
	}
	return false
}

func isV2Meta(k []byte) bool {
	switch string(k) {
	case "action", "entity", "entity_id", "id", "correlation_id", "company_id", "user_id", "webhook_id",
		"webhook_owner_id", "timestamp", "version", "type", "is_bulk_edit", "change_source", "attempt", "host",
		"permitted_user_ids", "merged_to_id", "merged_from_id":
		return true
	}
	return false
}

// decodeV2 reads a v2 payload, returned as the event's payload field. The
// payload, its meta and meta's timestamp share one allocation with it.
func decodeV2(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.Event_PipedriveV2 {
	c := &struct {
		payload  hookstreamv1.Event_PipedriveV2
		p        hookstreamv1.PipedriveChangeV2
		meta     hookstreamv1.PipedriveMetaV2
		occurred timestamppb.Timestamp
	}{}
	c.payload.PipedriveV2 = &c.p
	p := &c.p
	p.Data = r.Struct(root, "data")
	p.Previous = r.Struct(root, "previous")
	if m := r.Object(root, "meta"); m != nil {
		r.Enter("meta")
		for _, k := range [...]string{"action", "entity", "id", "timestamp"} {
			r.Require(m, k)
		}
		meta := &c.meta
		*meta = hookstreamv1.PipedriveMetaV2{
			Action:           r.String(m, "action"),
			Entity:           r.String(m, "entity"),
			EntityId:         r.ID(m, "entity_id"),
			Id:               r.ID(m, "id"),
			CorrelationId:    r.ID(m, "correlation_id"),
			CompanyId:        r.ID(m, "company_id"),
			UserId:           r.ID(m, "user_id"),
			WebhookId:        r.ID(m, "webhook_id"),
			WebhookOwnerId:   r.ID(m, "webhook_owner_id"),
			Type:             r.String(m, "type"),
			IsBulkEdit:       r.Bool(m, "is_bulk_edit"),
			ChangeSource:     r.String(m, "change_source"),
			Host:             r.String(m, "host"),
			PermittedUserIds: ids(r, m, "permitted_user_ids"),
			MergedToId:       r.ID(m, "merged_to_id"),
			MergedFromId:     r.ID(m, "merged_from_id"),
		}
		meta.Version, _ = r.OptText(m, "version")
		if t := r.Time(m, "timestamp"); !t.IsZero() {
			// As timestamppb.New.
			c.occurred.Seconds, c.occurred.Nanos = t.Unix(), int32(t.Nanosecond())
			meta.Timestamp = &c.occurred
		}
		if a := r.Int64(m, "attempt"); a > 0 && a < math.MaxUint32 {
			meta.Attempt = uint32(a)
		}
		meta.Extra = r.Extra(m, isV2Meta)
		p.Meta = meta
		r.Leave()
	}
	p.Extra = r.Extra(root, isV2TopLevel)
	return &c.payload
}

func buildV2(in normalize.Input, payload *hookstreamv1.Event_PipedriveV2) *hookstreamv1.Event {
	p := payload.PipedriveV2
	meta := p.GetMeta()
	entity := normalize.Snake(meta.GetEntity())
	canonical := Action(meta.GetAction())
	if meta.GetAction() == "change" && meta.GetMergedFromId() != "" {
		canonical = "merged"
	}
	state := p.GetData()
	if state == nil {
		state = p.GetPrevious() // a delete carries the last state in previous
	}
	subjectID := meta.GetEntityId()
	if subjectID == "" {
		subjectID = scalarText(state.GetFields()["id"])
	}
	ev := newEvent(in, meta.GetUserId())
	ev.Id = v2ID(in.Source, meta)
	ev.Source = in.Source
	ev.Vendor = hookstreamv1.Vendor_VENDOR_PIPEDRIVE
	ev.Type = normalize.Type(entity, canonical)
	ev.VendorType = meta.GetAction() + "." + meta.GetEntity()
	ev.OccurredAt = meta.GetTimestamp()
	ev.Subject.Kind, ev.Subject.Id, ev.Subject.Name = entity, subjectID, displayName(state)
	ev.Contact = contactOf(entity, state)
	ev.TenantId = meta.GetCompanyId()
	ev.DeliveryAttempt = meta.GetAttempt()
	ev.Payload = payload
	if canonical == "updated" || canonical == "merged" {
		ev.Changes = changesV2(p.GetPrevious(), p.GetData())
	}
	switch {
	case meta.GetMergedFromId() != "":
		ev.Merge = &hookstreamv1.Merge{MergedFromId: meta.GetMergedFromId(), MergedIntoId: subjectID}
	case meta.GetMergedToId() != "":
		ev.Merge = &hookstreamv1.Merge{MergedFromId: subjectID, MergedIntoId: meta.GetMergedToId()}
	}
	return ev
}

// v2ID keys a v2 delivery on meta.id, the event's own id, which a retry
// repeats and meta.attempt does not affect. For `user` entities Pipedrive
// sends the user id there instead, so those are keyed on the entity, the
// action and the event time, and on meta.correlation_id when sent: a retry
// repeats it, and it tells apart two changes of one user within the same
// second, which the older user events' whole-second timestamps cannot.
func v2ID(source string, meta *hookstreamv1.PipedriveMetaV2) string {
	if meta.GetEntity() != "user" && meta.GetId() != meta.GetEntityId() {
		return normalize.EventID(source, hookstreamv1.Vendor_VENDOR_PIPEDRIVE, "v2", meta.GetId())
	}
	at := meta.GetTimestamp().AsTime().Format(time.RFC3339Nano)
	if c := meta.GetCorrelationId(); c != "" {
		return normalize.EventID(source, hookstreamv1.Vendor_VENDOR_PIPEDRIVE, "v2", meta.GetEntity(),
			meta.GetEntityId(), meta.GetAction(), at, c)
	}
	return normalize.EventID(source, hookstreamv1.Vendor_VENDOR_PIPEDRIVE, "v2", meta.GetEntity(),
		meta.GetEntityId(), meta.GetAction(), at)
}

// changesV2 turns v2's previous (only the changed keys; a missing key means
// unchanged, null means it was null) into changes, with the new values from
// data. Custom fields are expanded to one change per field hash.
func changesV2(previous, data *structpb.Struct) []*hookstreamv1.Change {
	var buf [8]change
	found := buf[:0]
	for k, old := range previous.GetFields() {
		newV := data.GetFields()[k]
		if k == "custom_fields" {
			if cf := old.GetStructValue(); cf != nil {
				newCF := newV.GetStructValue().GetFields()
				for h, o := range cf.GetFields() {
					found = append(found, change{"custom_fields." + h, o, newCF[h]})
				}
				continue
			}
		}
		found = append(found, change{k, old, newV})
	}
	return newChanges(found)
}
