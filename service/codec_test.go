package service

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// The hand-built delivery must decode to exactly what marshaling the
// message would have produced.
func TestEncodeDelivery(t *testing.T) {
	ev := &hookstreamv1.Event{Id: "0123456789abcdef0123456789abcdef", Source: "s", Type: "deal.updated",
		Subject: &hookstreamv1.Subject{Kind: "deal", Id: "1", Name: "x"}}
	raw, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	enc := encodeDelivery(raw, "12345")
	var got hookstreamv1.SubscribeResponse
	if err := proto.Unmarshal(enc.wire(), &got); err != nil {
		t.Fatal(err)
	}
	want := &hookstreamv1.SubscribeResponse{Message: &hookstreamv1.SubscribeResponse_Delivery{
		Delivery: &hookstreamv1.EventDelivery{Event: ev, Cursor: "12345"}}}
	if diff := cmp.Diff(want, &got, protocmp.Transform()); diff != "" {
		t.Error(diff)
	}
	if b, _ := NewCodec().Marshal(enc); string(b.Materialize()) != string(enc.wire()) || b.Len() != enc.size() {
		t.Error("codec did not pass the encoded delivery through")
	}
	if &enc.event[0] != &raw[0] {
		t.Error("the delivery copied the event's bytes")
	}
}
