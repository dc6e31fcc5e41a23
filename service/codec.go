package service

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// Codec is the server's gRPC codec: plain protobuf, except that a delivery
// built with encodeDelivery goes out as the bytes it already is. An event's
// delivery is the same for every stream (the cursor is its log position),
// so it is encoded once, not once per subscriber.
type Codec struct{ proto encoding.CodecV2 }

// NewCodec wraps the registered protobuf codec.
func NewCodec() Codec { return Codec{proto: encoding.GetCodecV2("proto")} }

// Name implements encoding.CodecV2; it replaces "proto" on the server.
func (c Codec) Name() string { return "proto" }

// Marshal implements encoding.CodecV2.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*encodedDelivery); ok {
		return mem.BufferSlice{mem.SliceBuffer(f.head), mem.SliceBuffer(f.event), mem.SliceBuffer(f.tail)}, nil
	}
	return c.proto.Marshal(v)
}

// Unmarshal implements encoding.CodecV2.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

// encodedDelivery is a SubscribeResponse{delivery: {event, cursor}} in wire
// form: head, then the event's stored bytes (shared, not copied), then
// tail.
type encodedDelivery struct {
	head, event, tail []byte
	cursor            string
}

// size is the delivery's length in bytes.
func (d *encodedDelivery) size() int { return len(d.head) + len(d.event) + len(d.tail) }

// wire is the delivery as one slice (a copy), for tests.
func (d *encodedDelivery) wire() []byte {
	return append(append(append([]byte(nil), d.head...), d.event...), d.tail...)
}

// encodeDelivery builds the wire form from the event exactly as stored
// (its protobuf encoding) and its cursor: field 1 (delivery) of
// SubscribeResponse holding field 1 (event) and field 2 (cursor) of
// EventDelivery.
func encodeDelivery(event []byte, cursor string) *encodedDelivery {
	innerLen := protowire.SizeTag(1) + protowire.SizeBytes(len(event)) + protowire.SizeTag(2) + protowire.SizeBytes(len(cursor))
	head := make([]byte, 0, 2*protowire.SizeTag(1)+2*protowire.SizeVarint(uint64(innerLen)))
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(innerLen))
	head = protowire.AppendTag(head, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(event)))
	tail := protowire.AppendTag(nil, 2, protowire.BytesType)
	tail = protowire.AppendString(tail, cursor)
	return &encodedDelivery{head: head, event: event, tail: tail, cursor: cursor}
}
