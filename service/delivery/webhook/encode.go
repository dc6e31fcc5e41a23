package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Content types of the two body formats.
const (
	ContentTypeJSON        = "application/json"
	ContentTypeCloudEvents = "application/cloudevents+json"
)

// cloudEvent is a CloudEvents 1.0 envelope in structured JSON mode
// (https://github.com/cloudevents/spec, json-format.md). Field order is the
// order on the wire.
type cloudEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	DataContentType string          `json:"datacontenttype"`
	Data            json.RawMessage `json:"data"`
}

// Encode returns the request body for ev in an endpoint's format, and its
// Content-Type. EVENT_JSON (and UNSPECIFIED) is the Event as compact
// protojson, the same JSON the gRPC gateway serves. CLOUDEVENTS wraps that
// same JSON as the data of a CloudEvents envelope, so a CloudEvents router
// can filter on type and source without knowing our schema.
func Encode(ev *hookstreamv1.Event, format hookstreamv1.EndpointFormat) (body []byte, contentType string, err error) {
	if ev == nil {
		return nil, "", errors.New("encode: no event")
	}
	switch format {
	case hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_UNSPECIFIED, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON:
		body, err := marshalEvent(ev)
		if err != nil {
			return nil, "", err
		}
		return body, ContentTypeJSON, nil
	case hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_CLOUDEVENTS:
		body, err := encodeCloudEvent(ev)
		if err != nil {
			return nil, "", err
		}
		return body, ContentTypeCloudEvents, nil
	case hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY:
		return VendorBody(ev.GetRaw())
	}
	return nil, "", fmt.Errorf("encode: unknown endpoint format %d", format)
}

// ErrNoVendorBody says an event carries no vendor request body
// (Event.raw): it was stored with log.keep_raw off.
var ErrNoVendorBody = errors.New("the event was stored without its request body (log.keep_raw was off)")

// VendorBody is the vendor's request body as hookstream received it
// (secrets removed) and its content type: the ENDPOINT_FORMAT_VENDOR_BODY
// body.
func VendorBody(raw *hookstreamv1.RawRequest) ([]byte, string, error) {
	if raw == nil {
		return nil, "", ErrNoVendorBody
	}
	body, ct := raw.GetBody(), raw.GetContentType()
	if raw.GetBodyText() != "" {
		body = []byte(raw.GetBodyText())
	}
	if ct == "" {
		ct = ContentTypeJSON
	}
	return body, ct, nil
}

// marshalEvent encodes ev as protojson into a pooled scratch buffer and
// returns an exact-size copy: the body is kept (shared by every endpoint
// while the event is recent), and growing it from empty made twice its
// size in garbage.
func marshalEvent(ev *hookstreamv1.Event) ([]byte, error) {
	bp := jsonBufs.Get().(*[]byte)
	b, err := protojson.MarshalOptions{}.MarshalAppend((*bp)[:0], ev)
	if err != nil {
		jsonBufs.Put(bp)
		return nil, fmt.Errorf("encode event %s: %w", ev.GetId(), err)
	}
	out := bytes.Clone(b)
	if cap(b) <= 256<<10 { // one large event does not stay pooled
		*bp = b
		jsonBufs.Put(bp)
	}
	return out, nil
}

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func encodeCloudEvent(ev *hookstreamv1.Event) ([]byte, error) {
	// id, source and type are required CloudEvents attributes; a stored
	// event always has them, so their absence is a bug upstream.
	if ev.GetId() == "" || ev.GetSource() == "" || ev.GetType() == "" {
		return nil, fmt.Errorf("encode event %q as a CloudEvent: id, source and type are required", ev.GetId())
	}
	data, err := marshalEvent(ev)
	if err != nil {
		return nil, err
	}
	ce := cloudEvent{
		SpecVersion:     "1.0",
		ID:              ev.GetId(),
		Source:          "/hookstream/sources/" + url.PathEscape(ev.GetSource()),
		Type:            ev.GetType(),
		DataContentType: ContentTypeJSON,
		Data:            data,
	}
	// "kind/id" names one entity; a kind alone names none, so the
	// attribute (optional in CloudEvents) is left out unless both are known.
	if s := ev.GetSubject(); s.GetKind() != "" && s.GetId() != "" {
		ce.Subject = s.GetKind() + "/" + s.GetId()
	}
	if ts := ev.GetOccurredAt(); ts != nil {
		if err := ts.CheckValid(); err != nil {
			return nil, fmt.Errorf("encode event %s as a CloudEvent: occurred_at: %w", ev.GetId(), err)
		}
		ce.Time = ts.AsTime().UTC().Format(time.RFC3339Nano)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Leave <, > and & unescaped, as protojson does: the escaping is for
	// JSON pasted into HTML, and only makes bodies harder to read.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(ce); err != nil {
		return nil, fmt.Errorf("encode event %s as a CloudEvent: %w", ev.GetId(), err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
