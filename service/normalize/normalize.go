// Package normalize holds what the vendor normalizers share: the input and
// rejection types, a JSON reader that records precise field paths, time and
// id parsing, event ids and canonical type derivation. It does no I/O.
package normalize

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/reflect/protoreflect"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// Input is one webhook delivery as received.
type Input struct {
	// Source is the configured source name the webhook was sent to.
	Source string
	// Body is the exact request body.
	Body []byte
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time
}

// Normalizer turns raw webhooks of one vendor into canonical events.
type Normalizer interface {
	// Vendor is the vendor this normalizer handles.
	Vendor() hookstreamv1.Vendor
	// Normalize decodes, validates and normalizes one delivery. The error,
	// when not nil, is a *Rejection.
	Normalize(in Input) (*hookstreamv1.Event, error)
	// SecretMembers names the vendor's secret payload members (at any
	// depth), which are never stored: see ScrubBody and ScrubEvent.
	SecretMembers() []string
}

// Run is the skeleton every vendor normalizer shares: parse the body, let
// read turn it into an event (reading through r, which records the first
// problem), and validate the event. read may return nil after recording a
// problem in r.
func Run(pool *fastjson.ParserPool, v protovalidate.Validator, in Input,
	read func(r *Reader, root *fastjson.Value) *hookstreamv1.Event) (*hookstreamv1.Event, error) {
	root, p, err := Parse(pool, in.Body)
	if err != nil {
		return nil, err
	}
	defer pool.Put(p)
	r := getReader(in.Body)
	defer putReader(r)
	ev := read(r, root)
	if rej := r.Err(); rej != nil {
		return nil, rej
	}
	if rej := ValidateEvent(v, ev); rej != nil {
		return nil, rej
	}
	return ev, nil
}

// Rejection is a precise reason why a webhook cannot be normalized. Its
// message never includes payload values, so it is safe to log and return.
type Rejection struct {
	Code    hookstreamv1.RejectionCode
	Field   string
	Message string
}

// Error implements error.
func (r *Rejection) Error() string {
	if r.Field == "" {
		return r.Message
	}
	return r.Field + ": " + r.Message
}

// Proto returns the rejection as its wire message.
func (r *Rejection) Proto() *hookstreamv1.Rejection {
	return &hookstreamv1.Rejection{Code: r.Code, Field: r.Field, Message: r.Message}
}

// Reject builds a rejection.
func Reject(code hookstreamv1.RejectionCode, field, format string, args ...any) *Rejection {
	return &Rejection{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// AsRejection returns err as a *Rejection, wrapping any other error as an
// invalid-field rejection without exposing its text.
func AsRejection(err error) *Rejection {
	if err == nil {
		return nil
	}
	var r *Rejection
	if errors.As(err, &r) {
		return r
	}
	return Reject(hookstreamv1.RejectionCode_REJECTION_CODE_UNKNOWN_FORMAT, "", "payload could not be normalized")
}

// ValidateEvent runs protovalidate on ev, payload included, and turns the
// first violation into a rejection naming the field and the rule. Paths
// inside the vendor payload are given relative to it (`customer.id`, not
// `closer.customer.id`), since that is what the vendor sent. The few
// fields no vendor input reaches are left out: see ruleFilter.
func ValidateEvent(v protovalidate.Validator, ev *hookstreamv1.Event) *Rejection {
	err := v.Validate(ev, ruleFilter)
	if err == nil {
		return nil
	}
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) || len(verr.Violations) == 0 {
		return Reject(hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD, "", "validation could not run")
	}
	viol := verr.Violations[0].Proto
	field := protovalidate.FieldPathString(viol.GetField())
	if payload := ev.ProtoReflect().WhichOneof(ev.ProtoReflect().Descriptor().Oneofs().ByName("payload")); payload != nil {
		if rest, ok := strings.CutPrefix(field, string(payload.Name())+"."); ok {
			field = rest
		}
	}
	msg := viol.GetMessage()
	if msg == "" {
		msg = "violates rule " + viol.GetRuleId()
	}
	return &Rejection{Code: hookstreamv1.RejectionCode_REJECTION_CODE_INVALID_FIELD, Field: field, Message: msg}
}

// eventDesc is the Event descriptor, compared by identity in builtField.
var eventDesc = (&hookstreamv1.Event{}).ProtoReflect().Descriptor()

// builtField reports whether fd is an Event field whose rules no vendor
// input can break, because every normalizer sets it itself: the id
// (EventID's 32 hex digits, which protovalidate would match against a
// regular expression on every event), the vendor (a constant), received_at
// (always set), the actor (a constant kind) and supersedes (never set
// here). Everything else, every field of the vendor payload above all, is
// still validated, and the fuzz targets check every event a normalizer
// returns against all the rules.
func builtField(fd protoreflect.FieldDescriptor) bool {
	// The number first: comparing descriptors (interfaces) is the dearer
	// test, and validated asks about every field protovalidate visits.
	switch fd.Number() {
	case 1, 3, 7, 9, 15: // id, vendor, received_at, actor, supersedes (pinned by a test)
		return fd.ContainingMessage() == eventDesc
	}
	return false
}

// ruleFilter keeps protovalidate off the fields builtField names and off
// fields holding messages without rules (see validated).
var ruleFilter = protovalidate.WithFilter(protovalidate.FilterFunc(
	func(_ protoreflect.Message, d protoreflect.Descriptor) bool { return validated(d) }))

// validated reports whether protovalidate is to look at d: anything but
// the fields builtField names and fields holding google.protobuf.Struct,
// Value and ListValue (walking their maps was half the cost of normalizing
// a Pipedrive event) or the Event's Contact, Merge and RawRequest, which
// it would otherwise look into on every event to find nothing. None of
// these messages has rules, nor does a field holding one
// (TestRulelessMessages).
func validated(d protoreflect.Descriptor) bool {
	fd, ok := d.(protoreflect.FieldDescriptor)
	switch {
	case !ok:
		return true
	case builtField(fd):
		return false
	case fd.Message() == nil:
		return true
	}
	switch fd.Message().FullName() {
	case "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue",
		"hookstream.v1.Contact", "hookstream.v1.Merge", "hookstream.v1.RawRequest":
		return false
	}
	return true
}

// NewValidator builds the protovalidate validator the normalizers share,
// with the rules of every vendor payload and of Event compiled up front so
// the first webhook does not pay for it.
func NewValidator() (protovalidate.Validator, error) {
	return protovalidate.New(
		protovalidate.WithMessages(&hookstreamv1.Event{}),
		protovalidate.WithFailFast(),
	)
}
