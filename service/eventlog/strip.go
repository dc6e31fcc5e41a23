package eventlog

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// rawField is the field number of Event.raw, the vendor's original
// request, the highest of Event.
const rawField = protowire.Number(50)

// marshalEvent is the stored encoding of ev: its protobuf encoding with
// the raw request, if any, as the very last field. The Go marshaller
// writes known fields in number order but a oneof (the payload) after
// all of them, so a plain proto.Marshal would put raw before the payload;
// written last, StripRaw takes it off with a shorter slice instead of a
// copy. Field order does not matter to any protobuf decoder. ev is left
// as it was (its Raw is set aside while the rest is encoded).
func marshalEvent(ev *hookstreamv1.Event) ([]byte, error) {
	raw := ev.GetRaw()
	if raw == nil {
		return proto.Marshal(ev)
	}
	ev.Raw = nil
	defer func() { ev.Raw = raw }()
	rawSize := proto.Size(raw)
	size := proto.Size(ev)
	data := make([]byte, 0, size+protowire.SizeTag(rawField)+protowire.SizeBytes(rawSize))
	data, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(data, ev)
	if err != nil {
		return nil, err
	}
	data = protowire.AppendTag(data, rawField, protowire.BytesType)
	data = protowire.AppendVarint(data, uint64(rawSize))
	return proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(data, raw)
}

// StripRaw returns an event's stored encoding without its raw request
// (Event.raw), for readers that did not ask for it. It walks the top-level
// fields only, without decoding the event: with no raw field it returns b
// itself (no allocation), with the raw field last (as stored) a shorter
// slice of b, and only with a raw field elsewhere (an encoding written by
// another marshaller) a copy without it. Bytes that do not parse as
// protobuf are returned as they are, for the decoder to refuse.
func StripRaw(b []byte) []byte {
	var out []byte // nil until a raw field is found before the end
	start := 0     // first byte of b not yet copied to out
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return b
		}
		m := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if m < 0 {
			return b
		}
		end := i + n + m
		if num == rawField {
			if out == nil && end == len(b) && start == 0 {
				return b[:i:i]
			}
			if out == nil {
				out = make([]byte, 0, len(b)-(end-i))
			}
			out = append(out, b[start:i]...)
			start = end
		}
		i = end
	}
	if out == nil {
		return b
	}
	return append(out, b[start:]...)
}

// DecodedWithoutRaw returns the event without its raw request, for a
// reader that did not ask for it: decoded from the stored bytes without
// the raw field, so the request body is never copied out. It is decoded
// afresh on every call (Decoded's shared copy keeps raw).
func (s Stored) DecodedWithoutRaw() (*hookstreamv1.Event, error) {
	if s.Event != nil && s.Raw == nil {
		if s.Event.GetRaw() == nil {
			return s.Event, nil
		}
		ev := proto.Clone(s.Event).(*hookstreamv1.Event)
		ev.Raw = nil
		return ev, nil
	}
	ev := &hookstreamv1.Event{}
	if err := proto.Unmarshal(StripRaw(s.Raw), ev); err != nil {
		return nil, fmt.Errorf("eventlog: decode event at %d: %w", s.Seq, err)
	}
	return ev, nil
}

// RawRequest returns the event's raw request (Event.raw) alone, nil when
// it has none, decoding nothing else of the event.
func (s Stored) RawRequest() (*hookstreamv1.RawRequest, error) {
	if s.Event != nil && s.Raw == nil {
		return s.Event.GetRaw(), nil
	}
	b := s.Raw
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 {
			return nil, fmt.Errorf("eventlog: event at %d does not parse", s.Seq)
		}
		if num == rawField && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b[i+n:])
			if m < 0 {
				return nil, fmt.Errorf("eventlog: event at %d does not parse", s.Seq)
			}
			raw := &hookstreamv1.RawRequest{}
			if err := proto.Unmarshal(v, raw); err != nil {
				return nil, fmt.Errorf("eventlog: raw request of the event at %d: %w", s.Seq, err)
			}
			return raw, nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if m < 0 {
			return nil, fmt.Errorf("eventlog: event at %d does not parse", s.Seq)
		}
		i += n + m
	}
	return nil, nil
}
