package normalize

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// ScrubEvent removes secrets from an event before it is stored, the event
// counterpart of ScrubBody. members names the vendor's secret members,
// secrets are the source's credentials. In place, anywhere in the event
// (typed payload, `extra`, Pipedrive objects, changes, derived fields):
//
//   - members of google.protobuf.Struct values whose name contains one of
//     members (ignoring case, as in ScrubBody) are deleted;
//   - `{key, value}` entries whose key names one of members are deleted from
//     their list (Closer `backOfficeData`), and a Struct object with such a
//     `key` loses its `value`; a message or Struct object whose
//     `record_name` names one (a ClinchPad custom field) loses its
//     `record_value` and `old_record_value`;
//   - changes whose field (or its last dotted segment) names one of members
//     are deleted;
//   - every secret inside a string, map key included, is replaced by
//     "[REDACTED]"; a string holding one only percent-encoded is replaced
//     whole.
//
// `id` and `source` are hookstream's own and left alone.
func ScrubEvent(ev *hookstreamv1.Event, members, secrets []string) {
	s := eventScrubber{members: members, secrets: nonEmpty(secrets)}
	if len(s.members) == 0 && len(s.secrets) == 0 {
		return
	}
	if len(s.members) > 0 {
		kept := ev.Changes[:0]
		for _, c := range ev.GetChanges() {
			f := c.GetField()
			if i := strings.LastIndexByte(f, '.'); i >= 0 {
				f = f[i+1:]
			}
			if !isMember(f, s.members) {
				kept = append(kept, c)
			}
		}
		clear(ev.Changes[len(kept):])
		ev.Changes = kept
	}
	m := ev.ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		switch fd.Name() {
		case "id", "source":
			continue
		}
		if m.Has(fd) {
			s.field(m, fd, m.Get(fd))
		}
	}
}

type eventScrubber struct {
	members, secrets []string
}

func (s eventScrubber) str(v string) (string, bool) { return ScrubString(v, s.secrets) }

// field scrubs the value v of field fd of m (the field Range is at, the
// only one it may change).
func (s eventScrubber) field(m protoreflect.Message, fd protoreflect.FieldDescriptor, v protoreflect.Value) {
	switch {
	case fd.IsList():
		l := v.List()
		n := 0
		for i := range l.Len() {
			e := l.Get(i)
			switch fd.Kind() {
			case protoreflect.MessageKind, protoreflect.GroupKind:
				if s.secretPair(e.Message()) {
					continue
				}
				s.message(e.Message())
			case protoreflect.StringKind:
				if r, ok := s.str(e.String()); ok {
					e = protoreflect.ValueOfString(r)
				}
			}
			l.Set(n, e)
			n++
		}
		l.Truncate(n)
	case fd.IsMap():
		mp := v.Map()
		mp.Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
			switch fd.MapValue().Kind() {
			case protoreflect.MessageKind, protoreflect.GroupKind:
				s.message(e.Message())
			case protoreflect.StringKind:
				if r, ok := s.str(e.String()); ok {
					mp.Set(k, protoreflect.ValueOfString(r))
				}
			}
			return true
		})
	case fd.Kind() == protoreflect.StringKind:
		if r, ok := s.str(v.String()); ok {
			m.Set(fd, protoreflect.ValueOfString(r))
		}
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		s.message(v.Message())
	}
}

func (s eventScrubber) message(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *structpb.Struct:
		s.structValue(x)
		return
	case *structpb.Value:
		s.value(x)
		return
	case *structpb.ListValue:
		for _, v := range x.GetValues() {
			s.value(v)
		}
		return
	}
	// The fields are walked by descriptor rather than with Range, whose
	// callback would be allocated for every message visited.
	fields := m.Descriptor().Fields()
	// A ClinchPad custom field named like a secret member keeps no value.
	if name := fields.ByName("record_name"); name != nil && name.Kind() == protoreflect.StringKind && !name.IsList() &&
		isMember(m.Get(name).String(), s.members) {
		for _, v := range [...]protoreflect.Name{"record_value", "old_record_value"} {
			if fd := fields.ByName(v); fd != nil {
				m.Clear(fd)
			}
		}
	}
	for i := range fields.Len() {
		if fd := fields.Get(i); m.Has(fd) {
			s.field(m, fd, m.Get(fd))
		}
	}
}

// secretPair reports whether m is a {key, value} entry whose key names a
// secret member.
func (s eventScrubber) secretPair(m protoreflect.Message) bool {
	fields := m.Descriptor().Fields()
	key, val := fields.ByName("key"), fields.ByName("value")
	if key == nil || val == nil || key.Kind() != protoreflect.StringKind || key.IsList() {
		return false
	}
	return isMember(m.Get(key).String(), s.members)
}

func (s eventScrubber) structValue(st *structpb.Struct) {
	if st == nil {
		return
	}
	if k := st.GetFields()["key"]; k != nil && isMember(k.GetStringValue(), s.members) {
		delete(st.Fields, "value")
	}
	if k := st.GetFields()["record_name"]; k != nil && isMember(k.GetStringValue(), s.members) {
		delete(st.Fields, "record_value")
		delete(st.Fields, "old_record_value")
	}
	for k, v := range st.GetFields() {
		if isMember(k, s.members) {
			delete(st.Fields, k)
			continue
		}
		s.value(v)
		if r, ok := s.str(k); ok {
			delete(st.Fields, k)
			st.Fields[r] = v
		}
	}
}

func (s eventScrubber) value(v *structpb.Value) {
	switch k := v.GetKind().(type) {
	case *structpb.Value_StringValue:
		if r, ok := s.str(k.StringValue); ok {
			k.StringValue = r
		}
	case *structpb.Value_StructValue:
		s.structValue(k.StructValue)
	case *structpb.Value_ListValue:
		for _, e := range k.ListValue.GetValues() {
			s.value(e)
		}
	}
}
