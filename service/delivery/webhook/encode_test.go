package webhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

// sampleEvent has a bit of everything: nested messages, a Value, a oneof
// payload, non-ASCII text and characters HTML escaping would touch.
func sampleEvent() *hookstreamv1.Event {
	return &hookstreamv1.Event{
		Id:         "0123456789abcdef0123456789abcdef",
		Source:     "closer-main",
		Vendor:     hookstreamv1.Vendor_VENDOR_CLOSER,
		Type:       "conversation.closed",
		VendorType: "ThreadClosedEvent",
		OccurredAt: timestamppb.New(time.Date(2024, 3, 1, 12, 30, 45, 123456789, time.UTC)),
		ReceivedAt: timestamppb.New(time.Date(2024, 3, 1, 12, 30, 46, 0, time.UTC)),
		Subject:    &hookstreamv1.Subject{Kind: "conversation", Id: "cust-42", Name: "Zoë <VIP> & co ✓"},
		Actor:      &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_AGENT, Id: "a1", Name: "Ana"},
		Changes: []*hookstreamv1.Change{{
			Field:    "stage",
			OldValue: structpb.NewStringValue("open"),
			NewValue: structpb.NewNullValue(),
		}},
		DeliveryAttempt: 1,
		Payload: &hookstreamv1.Event_Closer{Closer: &hookstreamv1.CloserConversation{
			EventType: "ThreadClosedEvent",
			Timestamp: 1709296245123,
			Customer:  &hookstreamv1.CloserCustomer{Id: "cust-42", FirstName: "Zoë"},
		}},
	}
}

func TestEncodeEventJSON(t *testing.T) {
	t.Parallel()
	ev := sampleEvent()
	for _, format := range []hookstreamv1.EndpointFormat{
		hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_UNSPECIFIED,
		hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON,
	} {
		t.Run(format.String(), func(t *testing.T) {
			t.Parallel()
			body, contentType, err := webhook.Encode(ev, format)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if contentType != "application/json" {
				t.Errorf("content type = %q", contentType)
			}
			if strings.Contains(string(body), "\n") {
				t.Errorf("body is not compact: %s", body)
			}
			var got hookstreamv1.Event
			if err := protojson.Unmarshal(body, &got); err != nil {
				t.Fatalf("protojson.Unmarshal: %v\n%s", err, body)
			}
			if diff := cmp.Diff(ev, &got, protocmp.Transform()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeCloudEvents(t *testing.T) {
	t.Parallel()
	noSubject := sampleEvent()
	noSubject.Subject = nil
	noSubjectID := sampleEvent()
	noSubjectID.Subject.Id = ""
	noTime := sampleEvent()
	noTime.OccurredAt = nil
	wholeSecond := sampleEvent()
	wholeSecond.OccurredAt = timestamppb.New(time.Date(2024, 3, 1, 12, 30, 45, 0, time.FixedZone("x", 3600)))

	tests := []struct {
		name        string
		ev          *hookstreamv1.Event
		wantSubject any // nil: attribute absent
		wantTime    any
	}{
		{"full", sampleEvent(), "conversation/cust-42", "2024-03-01T12:30:45.123456789Z"},
		{"no subject", noSubject, nil, "2024-03-01T12:30:45.123456789Z"},
		{"subject without id", noSubjectID, nil, "2024-03-01T12:30:45.123456789Z"},
		{"no occurred_at", noTime, "conversation/cust-42", nil},
		{"whole second", wholeSecond, "conversation/cust-42", "2024-03-01T11:30:45Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body, contentType, err := webhook.Encode(tt.ev, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if contentType != "application/cloudevents+json" {
				t.Errorf("content type = %q", contentType)
			}
			var envelope map[string]json.RawMessage
			if err := json.Unmarshal(body, &envelope); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, body)
			}
			attrs := map[string]any{}
			for k, v := range envelope {
				if k == "data" {
					continue
				}
				var s any
				if err := json.Unmarshal(v, &s); err != nil {
					t.Fatalf("attribute %s: %v", k, err)
				}
				attrs[k] = s
			}
			want := map[string]any{
				"specversion":     "1.0",
				"id":              tt.ev.GetId(),
				"source":          "/hookstream/sources/closer-main",
				"type":            "conversation.closed",
				"datacontenttype": "application/json",
			}
			if tt.wantSubject != nil {
				want["subject"] = tt.wantSubject
			}
			if tt.wantTime != nil {
				want["time"] = tt.wantTime
			}
			if diff := cmp.Diff(want, attrs); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			var data hookstreamv1.Event
			if err := protojson.Unmarshal(envelope["data"], &data); err != nil {
				t.Fatalf("data is not an Event: %v\n%s", err, envelope["data"])
			}
			if diff := cmp.Diff(tt.ev, &data, protocmp.Transform()); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			if strings.Contains(string(body), `\u003c`) || strings.Contains(string(body), `\u0026`) {
				t.Errorf("body has HTML-escaped characters: %s", body)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	noType := sampleEvent()
	noType.Type = ""
	badTime := sampleEvent()
	badTime.OccurredAt = &timestamppb.Timestamp{Seconds: 1, Nanos: -1}
	tests := []struct {
		name   string
		ev     *hookstreamv1.Event
		format hookstreamv1.EndpointFormat
	}{
		{"nil event", nil, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON},
		{"unknown format", sampleEvent(), hookstreamv1.EndpointFormat(99)},
		{"cloudevent without type", noType, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS},
		{"cloudevent with invalid time", badTime, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if body, _, err := webhook.Encode(tt.ev, tt.format); err == nil {
				t.Errorf("Encode succeeded: %s", body)
			}
		})
	}
}

func TestEncodeVendorBody(t *testing.T) {
	t.Parallel()
	ev := &hookstreamv1.Event{Id: "0123456789abcdef0123456789abcdef",
		Raw: &hookstreamv1.RawRequest{ContentType: "application/json; charset=utf-8", BodyText: `{"meta": {"action": "change"}}`}}
	body, ct, err := webhook.Encode(ev, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY)
	if err != nil || string(body) != ev.GetRaw().GetBodyText() || ct != "application/json; charset=utf-8" {
		t.Errorf("vendor body: %q %q %v", body, ct, err)
	}
	bin := &hookstreamv1.Event{Raw: &hookstreamv1.RawRequest{Body: []byte{0xff, 0x00}}}
	if body, ct, err := webhook.Encode(bin, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY); err != nil || string(body) != "\xff\x00" || ct != webhook.ContentTypeJSON {
		t.Errorf("binary vendor body: %q %q %v", body, ct, err)
	}
	if _, _, err := webhook.Encode(&hookstreamv1.Event{}, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY); err == nil {
		t.Error("an event without its body encoded as the vendor's body")
	}
}
