// Package pipedrive normalizes Pipedrive webhooks in formats v1 and v2.
package pipedrive

import (
	"slices"
	"strings"

	"buf.build/go/protovalidate"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Normalizer turns Pipedrive webhooks into events. It is safe for
// concurrent use.
type Normalizer struct {
	validator protovalidate.Validator
	parsers   fastjson.ParserPool
}

// New returns a Pipedrive normalizer that validates with v.
func New(v protovalidate.Validator) *Normalizer { return &Normalizer{validator: v} }

// Vendor implements normalize.Normalizer.
func (n *Normalizer) Vendor() hookstreamv1.Vendor { return hookstreamv1.Vendor_VENDOR_PIPEDRIVE }

// SecretMembers implements normalize.Normalizer: normalize.SecretMembers.
// Pipedrive puts no secret of its own in the body (its Basic Auth
// credentials travel in a header; the source's password is still removed
// wherever it is echoed), but its objects' custom fields may be named so.
func (n *Normalizer) SecretMembers() []string { return normalize.SecretMembers }

// Normalize implements normalize.Normalizer.
func (n *Normalizer) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	return normalize.Run(&n.parsers, n.validator, in, func(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.Event {
		switch version(root) {
		case 1:
			payload := decodeV1(r, root)
			if r.Err() != nil {
				return nil
			}
			return buildV1(in, payload)
		case 2:
			payload := decodeV2(r, root)
			if r.Err() != nil {
				return nil
			}
			return buildV2(in, payload)
		}
		r.Fail(hookstreamv1.RejectionCode_REJECTION_CODE_UNKNOWN_FORMAT, "",
			"not a Pipedrive webhook: expected v1 (meta.object, current/previous) or v2 (meta.entity, data/previous)")
		return nil
	})
}

// version tells the two payload formats apart: v2 has meta.version "2.x"
// or meta.entity; v1 has `v: 1`, meta.object or `current`.
func version(root *fastjson.Value) int {
	meta := root.Get("meta")
	if meta == nil || meta.Type() != fastjson.TypeObject {
		return 0
	}
	if v := meta.Get("version"); v != nil {
		if b, err := v.StringBytes(); err == nil && strings.HasPrefix(string(b), "2") {
			return 2
		}
		if f, err := v.Float64(); err == nil && f >= 2 && f < 3 {
			return 2
		}
	}
	switch {
	case meta.Get("entity") != nil:
		return 2
	case meta.Get("object") != nil, root.Get("current") != nil, root.Get("v") != nil, meta.Get("v") != nil:
		return 1
	case root.Get("data") != nil:
		return 2
	}
	return 0
}

// Action maps a Pipedrive action, v1 or v2, to its canonical past-tense
// form; unknown actions pass through snake-cased.
func Action(action string) string {
	switch action {
	case "added", "create":
		return "created"
	case "updated", "change":
		return "updated"
	case "deleted", "delete":
		return "deleted"
	case "merged":
		return "merged"
	}
	return normalize.Snake(action)
}

// newEvent returns an event with received_at set from in, the actor set
// from userID and an empty subject, all three allocated together with the
// event: one allocation instead of four.
func newEvent(in normalize.Input, userID string) *hookstreamv1.Event {
	c := &struct {
		ev       hookstreamv1.Event
		received timestamppb.Timestamp
		actor    hookstreamv1.Actor
		subject  hookstreamv1.Subject
	}{}
	// As timestamppb.New.
	c.received.Seconds, c.received.Nanos = in.ReceivedAt.Unix(), int32(in.ReceivedAt.Nanosecond())
	setActor(&c.actor, userID)
	c.ev.ReceivedAt, c.ev.Actor, c.ev.Subject = &c.received, &c.actor, &c.subject
	return &c.ev
}

// setActor sets a to the user who triggered the change, or the system
// when the payload names none.
func setActor(a *hookstreamv1.Actor, userID string) {
	if userID == "" || userID == "0" {
		a.Kind = hookstreamv1.ActorKind_ACTOR_KIND_SYSTEM
		return
	}
	a.Kind, a.Id = hookstreamv1.ActorKind_ACTOR_KIND_USER, userID
}

// change is a Change found, before it is allocated.
type change struct {
	field              string
	oldValue, newValue *structpb.Value
}

// newChanges returns the changes found, sorted by field, all allocated in
// one array: one allocation for an event's changes instead of one each.
// None gives nil.
func newChanges(found []change) []*hookstreamv1.Change {
	if len(found) == 0 {
		return nil
	}
	slices.SortFunc(found, func(a, b change) int { return strings.Compare(a.field, b.field) })
	all := make([]hookstreamv1.Change, len(found))
	changes := make([]*hookstreamv1.Change, len(found))
	for i, f := range found {
		c := &all[i]
		c.Field, c.OldValue, c.NewValue = f.field, f.oldValue, f.newValue
		changes[i] = c
	}
	return changes
}

// displayName picks the field a Pipedrive object is known by.
func displayName(obj *structpb.Struct) string {
	for _, k := range [...]string{"title", "name", "subject"} {
		if s := obj.GetFields()[k].GetStringValue(); s != "" {
			return s
		}
	}
	return ""
}

// contactOf extracts the person involved from an object of the given
// entity: the object itself for persons, else its linked person, which v1
// sends as an id plus person_name (or, in older payloads, as an object with
// name, email and phone lists) and v2 sends as a bare person_id.
func contactOf(entity string, obj *structpb.Struct) *hookstreamv1.Contact {
	f := obj.GetFields()
	if f == nil {
		return nil
	}
	if entity == "person" {
		c := &hookstreamv1.Contact{
			Id:    scalarText(f["id"]),
			Name:  f["name"].GetStringValue(),
			Email: primary(f["email"], f["emails"]),
			Phone: primary(f["phone"], f["phones"]),
		}
		if c.Name == "" {
			c.Name = normalize.JoinName(f["first_name"].GetStringValue(), f["last_name"].GetStringValue())
		}
		return c
	}
	p, ok := f["person_id"]
	if !ok {
		return nil
	}
	c := &hookstreamv1.Contact{Name: f["person_name"].GetStringValue()}
	if ps := p.GetStructValue(); ps != nil {
		pf := ps.GetFields()
		c.Id = scalarText(pf["value"])
		c.Name = normalize.FirstNonEmpty(c.Name, pf["name"].GetStringValue())
		c.Email = primary(pf["email"], nil)
		c.Phone = primary(pf["phone"], nil)
	} else {
		c.Id = scalarText(p)
	}
	if c.Id == "" && c.Name == "" {
		return nil
	}
	return c
}

// primary returns the primary (else the first) value of a Pipedrive
// email or phone list, `[{value, primary, label}]`, or the value itself
// when it is a plain string.
func primary(lists ...*structpb.Value) string {
	for _, v := range lists {
		if s := v.GetStringValue(); s != "" {
			return s
		}
		items := v.GetListValue().GetValues()
		first := ""
		for _, it := range items {
			if s := it.GetStringValue(); s != "" && first == "" {
				first = s
			}
			f := it.GetStructValue().GetFields()
			val := f["value"].GetStringValue()
			if val == "" {
				continue
			}
			if f["primary"].GetBoolValue() {
				return val
			}
			if first == "" {
				first = val
			}
		}
		if first != "" {
			return first
		}
	}
	return ""
}

// scalarText renders a string or integral number value as text.
func scalarText(v *structpb.Value) string {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_NumberValue:
		return formatNumber(k.NumberValue)
	}
	return ""
}

// isCustomFieldKey reports whether a v1 object key is a custom field: 40 hex
// digits, optionally followed by a suffix such as `_currency`.
func isCustomFieldKey(k string) bool {
	if len(k) < 40 {
		return false
	}
	for i := 0; i < 40; i++ {
		c := k[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return len(k) == 40 || k[40] == '_'
}
