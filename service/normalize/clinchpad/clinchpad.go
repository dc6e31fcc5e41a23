// Package clinchpad normalizes ClinchPad lead activity webhooks.
package clinchpad

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

// HandshakeKey is the body member (and query parameter) holding the
// shared secret ClinchPad sends when one is configured. It is never stored.
const HandshakeKey = "handshake_key"

// Normalizer turns ClinchPad webhooks into events. It is safe for
// concurrent use.
type Normalizer struct {
	validator protovalidate.Validator
	parsers   fastjson.ParserPool
}

// New returns a ClinchPad normalizer that validates with v.
func New(v protovalidate.Validator) *Normalizer { return &Normalizer{validator: v} }

// Vendor implements normalize.Normalizer.
func (n *Normalizer) Vendor() hookstreamv1.Vendor { return hookstreamv1.Vendor_VENDOR_CLINCHPAD }

// SecretMembers implements normalize.Normalizer: normalize.SecretMembers,
// among them `handshake_key`, wherever it is.
func (n *Normalizer) SecretMembers() []string { return normalize.SecretMembers }

// Normalize implements normalize.Normalizer.
func (n *Normalizer) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	return normalize.Run(&n.parsers, n.validator, in, func(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.Event {
		w := decode(r, root)
		if r.Err() != nil {
			return nil
		}
		return build(in, r, root, w)
	})
}

func isTopLevel(k []byte) bool {
	switch string(k) {
	case "activity", "lead", HandshakeKey:
		return true
	}
	return false
}

func isLeadField(k []byte) bool {
	switch string(k) {
	case "_id", "name", "stage", "pipe":
		return true
	}
	return false
}

// textFields are the type-specific activity fields of seed 003, each kept in
// its own optional field of ClinchPadActivity, which set stores.
var textFields = [...]struct {
	name string
	set  func(a *hookstreamv1.ClinchPadActivity, s string)
}{
	{"old_stage_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldStageName = &s }},
	{"new_stage_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.NewStageName = &s }},
	{"old_lead_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldLeadName = &s }},
	{"lead_assigned_to_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.LeadAssignedToName = &s }},
	{"old_lead_assigned_to_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldLeadAssignedToName = &s }},
	{"lead_size", func(a *hookstreamv1.ClinchPadActivity, s string) { a.LeadSize = &s }},
	{"old_lead_size", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldLeadSize = &s }},
	{"todo_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.TodoName = &s }},
	{"todo_type", func(a *hookstreamv1.ClinchPadActivity, s string) { a.TodoType = &s }},
	{"todo_date", func(a *hookstreamv1.ClinchPadActivity, s string) { a.TodoDate = &s }},
	{"todo_time", func(a *hookstreamv1.ClinchPadActivity, s string) { a.TodoTime = &s }},
	{"old_todo_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldTodoName = &s }},
	{"old_todo_type", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldTodoType = &s }},
	{"old_todo_date", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldTodoDate = &s }},
	{"old_todo_time", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldTodoTime = &s }},
	{"note_content", func(a *hookstreamv1.ClinchPadActivity, s string) { a.NoteContent = &s }},
	{"attachment_filename", func(a *hookstreamv1.ClinchPadActivity, s string) { a.AttachmentFilename = &s }},
	{"attachment_url", func(a *hookstreamv1.ClinchPadActivity, s string) { a.AttachmentUrl = &s }},
	{"record_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.RecordName = &s }},
	{"record_value", func(a *hookstreamv1.ClinchPadActivity, s string) { a.RecordValue = &s }},
	{"old_record_value", func(a *hookstreamv1.ClinchPadActivity, s string) { a.OldRecordValue = &s }},
	{"contact_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.ContactName = &s }},
	{"product_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.ProductName = &s }},
	{"product_quantity", func(a *hookstreamv1.ClinchPadActivity, s string) { a.ProductQuantity = &s }},
	{"product_price", func(a *hookstreamv1.ClinchPadActivity, s string) { a.ProductPrice = &s }},
	{"zone_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.ZoneName = &s }},
	{"source_name", func(a *hookstreamv1.ClinchPadActivity, s string) { a.SourceName = &s }},
	{"subject", func(a *hookstreamv1.ClinchPadActivity, s string) { a.Subject = &s }},
}

// textFieldIndex maps a textFields name to its index. It is only read.
var textFieldIndex = func() map[string]int {
	m := make(map[string]int, len(textFields))
	for i, f := range textFields {
		m[f.name] = i
	}
	return m
}()

func isActivityField(k []byte) bool {
	switch string(k) {
	case "_id", "created_at", "type", "user", "todo_done", HandshakeKey:
		return true
	}
	_, ok := textFieldIndex[string(k)]
	return ok
}

// readTextFields sets the textFields a carries. It looks the activity's
// members up in one pass rather than searching it once per field, then
// reads them in textFields order, so the first bad one is reported as
// before.
func readTextFields(r *normalize.Reader, a *fastjson.Value, act *hookstreamv1.ClinchPadActivity) {
	var vals [len(textFields)]*fastjson.Value
	o, _ := a.Object()
	o.Visit(func(k []byte, v *fastjson.Value) {
		if i, ok := textFieldIndex[string(k)]; ok && vals[i] == nil { // the first of duplicates, as Get
			vals[i] = v
		}
	})
	for i, f := range textFields {
		if s, ok := r.OptTextValue(f.name, vals[i]); ok {
			f.set(act, s)
		}
	}
}

func decode(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.ClinchPadWebhook {
	r.Require(root, "activity")
	r.Require(root, "lead")
	w := &hookstreamv1.ClinchPadWebhook{}
	if a := r.Object(root, "activity"); a != nil {
		r.Enter("activity")
		r.Require(a, "_id")
		r.Require(a, "type")
		r.Require(a, "created_at")
		act := &hookstreamv1.ClinchPadActivity{
			Id:   r.ID(a, "_id"),
			Type: r.String(a, "type"),
		}
		if t := r.Time(a, "created_at"); !t.IsZero() {
			act.CreatedAt = timestamppb.New(t)
		}
		if u := r.Object(a, "user"); u != nil {
			r.Enter("user")
			act.User = &hookstreamv1.ClinchPadUser{Id: r.ID(u, "_id"), Name: r.String(u, "name"), PhotoUrl: r.String(u, "photo_url"),
				Extra: r.Extra(u, isUserField)}
			r.Leave()
		}
		if done, ok := r.OptBool(a, "todo_done"); ok {
			act.TodoDone = &done
		}
		readTextFields(r, a, act)
		act.Extra = r.Extra(a, isActivityField)
		w.Activity = act
		r.Leave()
	}
	if l := r.Object(root, "lead"); l != nil {
		r.Enter("lead")
		r.Require(l, "_id")
		w.Lead = &hookstreamv1.ClinchPadLead{
			Id:    r.ID(l, "_id"),
			Name:  r.String(l, "name"),
			Stage: ref(r, l, "stage"),
			Pipe:  ref(r, l, "pipe"),
			Extra: r.Extra(l, isLeadField),
		}
		r.Leave()
	}
	w.Extra = r.Extra(root, isTopLevel)
	return w
}

func ref(r *normalize.Reader, parent *fastjson.Value, key string) *hookstreamv1.ClinchPadRef {
	o := r.Object(parent, key)
	if o == nil {
		return nil
	}
	r.Enter(key)
	defer r.Leave()
	return &hookstreamv1.ClinchPadRef{Id: r.ID(o, "_id"), Name: r.String(o, "name"), Extra: r.Extra(o, isRefField)}
}

// The members a user and a stage or pipe reference model; the others are
// kept in their `extra`.
func isUserField(k []byte) bool {
	switch string(k) {
	case "_id", "name", "photo_url":
		return true
	}
	return false
}

func isRefField(k []byte) bool { return string(k) == "_id" || string(k) == "name" }

func build(in normalize.Input, r *normalize.Reader, root *fastjson.Value, w *hookstreamv1.ClinchPadWebhook) *hookstreamv1.Event {
	act, lead := w.GetActivity(), w.GetLead()
	noun, verb, _ := strings.Cut(act.GetType(), ":")
	ev := &hookstreamv1.Event{
		// activity._id names one activity record, so a redelivery repeats
		// it; the lead id guards against ids reused across leads.
		Id:         normalize.EventID(in.Source, hookstreamv1.Vendor_VENDOR_CLINCHPAD, lead.GetId(), act.GetId()),
		Source:     in.Source,
		Vendor:     hookstreamv1.Vendor_VENDOR_CLINCHPAD,
		Type:       normalize.Type(noun, verb),
		VendorType: act.GetType(),
		OccurredAt: act.GetCreatedAt(),
		ReceivedAt: timestamppb.New(in.ReceivedAt),
		Subject:    &hookstreamv1.Subject{Kind: "lead", Id: lead.GetId(), Name: lead.GetName()},
		Payload:    &hookstreamv1.Event_Clinchpad{Clinchpad: w},
	}
	if u := act.GetUser(); u != nil {
		ev.Actor = &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_USER, Id: u.GetId(), Name: u.GetName()}
	} else {
		ev.Actor = &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_SYSTEM}
	}
	if noun == "contact" && act.GetContactName() != "" {
		ev.Contact = &hookstreamv1.Contact{Name: act.GetContactName()}
	}
	r.Enter("activity")
	ev.Changes = changes(r, root.Get("activity"), act, lead)
	r.Leave()
	return ev
}

// changes derives field changes from the old_* and new values an activity
// carries. Values keep their JSON types (a lead size sent as a number stays
// a number). A value the payload does not give is left unset; a value that
// became empty (an unassigned lead) is null.
func changes(r *normalize.Reader, a *fastjson.Value, act *hookstreamv1.ClinchPadActivity, lead *hookstreamv1.ClinchPadLead) []*hookstreamv1.Change {
	val := func(key string) *structpb.Value { return r.Value(a, key) }
	change := func(field string, oldV, newV *structpb.Value) []*hookstreamv1.Change {
		if oldV == nil && newV == nil {
			return nil
		}
		return []*hookstreamv1.Change{{Field: field, OldValue: oldV, NewValue: newV}}
	}
	switch act.GetType() {
	case "lead:moved":
		return change("stage", val("old_stage_name"), val("new_stage_name"))
	case "lead:name_changed":
		return change("name", val("old_lead_name"), structpb.NewStringValue(lead.GetName()))
	case "lead:assigned":
		return change("assigned_to", val("old_lead_assigned_to_name"), val("lead_assigned_to_name"))
	case "lead:unassigned":
		return change("assigned_to", val("old_lead_assigned_to_name"), structpb.NewNullValue())
	case "lead:size_changed":
		return change("size", val("old_lead_size"), val("lead_size"))
	case "lead:won", "lead:lost":
		_, verb, _ := strings.Cut(act.GetType(), ":")
		return change("status", nil, structpb.NewStringValue(verb))
	case "lead:restored":
		return change("archived", structpb.NewBoolValue(true), structpb.NewBoolValue(false))
	case "todo:name_changed":
		return change("todo_name", val("old_todo_name"), val("todo_name"))
	case "todo:type_changed":
		return change("todo_type", val("old_todo_type"), val("todo_type"))
	case "todo:date_changed":
		return change("todo_date", val("old_todo_date"), val("todo_date"))
	case "todo:time_changed":
		return change("todo_time", val("old_todo_time"), val("todo_time"))
	case "todo:done_changed":
		if act.TodoDone == nil {
			return nil
		}
		return change("todo_done", nil, structpb.NewBoolValue(act.GetTodoDone()))
	case "record:created":
		return change("records."+act.GetRecordName(), nil, val("record_value"))
	case "record:updated":
		return change("records."+act.GetRecordName(), val("old_record_value"), val("record_value"))
	case "record:deleted":
		return change("records."+act.GetRecordName(), val("record_value"), structpb.NewNullValue())
	}
	// Types outside the documented table: pair every old_<x> with <x> or
	// new_<x>, so new kinds of change are not lost.
	var out []*hookstreamv1.Change
	o, _ := a.Object()
	o.Visit(func(k []byte, _ *fastjson.Value) {
		base, ok := strings.CutPrefix(string(k), "old_")
		if !ok || base == "" {
			return
		}
		newV := val(base)
		if newV == nil {
			newV = val("new_" + base)
		}
		out = append(out, &hookstreamv1.Change{Field: base, OldValue: val(string(k)), NewValue: newV})
	})
	// Changes are sorted by field, as every vendor's are (docs/events.md),
	// not left in the payload's order.
	slices.SortStableFunc(out, func(a, b *hookstreamv1.Change) int { return strings.Compare(a.GetField(), b.GetField()) })
	return out
}
