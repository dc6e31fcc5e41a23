package main

import (
	"errors"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec hands the subscriber driver each stream message as bytes, so
// the driver reads only what it measures instead of decoding whole events
// on the two cores it shares with the server.
type rawCodec struct{}

// frame is one undecoded stream message.
type frame struct{ b []byte }

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	// Only the Subscribe request is sent; it is pre-encoded.
	return mem.BufferSlice{mem.SliceBuffer(v.(*frame).b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*frame).b = data.Materialize()
	return nil
}

// receivedAt extracts delivery.event.received_at from a SubscribeResponse
// (field 1 → field 1 → field 7); ok is false for heartbeats.
func receivedAt(b []byte) (time.Time, bool, error) {
	delivery, ok, err := field(b, 1)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	event, ok, err := field(delivery, 1)
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	ts, ok, err := field(event, 7)
	if err != nil || !ok {
		return time.Time{}, ok, err
	}
	var sec, nanos uint64
	for len(ts) > 0 {
		num, typ, n := protowire.ConsumeTag(ts)
		if n < 0 || typ != protowire.VarintType {
			return time.Time{}, false, errors.New("bad timestamp")
		}
		ts = ts[n:]
		v, m := protowire.ConsumeVarint(ts)
		if m < 0 {
			return time.Time{}, false, errors.New("bad timestamp")
		}
		ts = ts[m:]
		switch num {
		case 1:
			sec = v
		case 2:
			nanos = v
		}
	}
	return time.Unix(int64(sec), int64(nanos)), true, nil
}

// field returns the bytes of the first length-delimited field num in b.
func field(b []byte, num protowire.Number) ([]byte, bool, error) {
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, false, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, false, protowire.ParseError(m)
			}
			return v, true, nil
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return nil, false, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil, false, nil
}
