// Package closer normalizes Closer (closer.app) conversation webhooks.
package closer

import (
	"strconv"
	"strings"

	"buf.build/go/protovalidate"
	"github.com/valyala/fastjson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/normalize"
)

// Normalizer turns Closer webhooks into events. It is safe for concurrent use.
type Normalizer struct {
	validator protovalidate.Validator
	parsers   fastjson.ParserPool
}

// New returns a Closer normalizer that validates with v.
func New(v protovalidate.Validator) *Normalizer { return &Normalizer{validator: v} }

// Vendor implements normalize.Normalizer.
func (n *Normalizer) Vendor() hookstreamv1.Vendor { return hookstreamv1.Vendor_VENDOR_CLOSER }

// SecretMembers implements normalize.Normalizer: normalize.SecretMembers,
// among them the per-customer `apiKey` Closer sends in customer.
func (n *Normalizer) SecretMembers() []string { return normalize.SecretMembers }

// Normalize implements normalize.Normalizer.
func (n *Normalizer) Normalize(in normalize.Input) (*hookstreamv1.Event, error) {
	return normalize.Run(&n.parsers, n.validator, in, func(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.Event {
		c := decode(r, root)
		if r.Err() != nil {
			return nil
		}
		return build(in, c)
	})
}

func isTopLevel(k []byte) bool {
	switch string(k) {
	case "eventType", "timestamp", "customer", "closedType", "assignee", "messageHistory", "email", "phone":
		return true
	}
	return false
}

func isCustomerField(k []byte) bool {
	switch string(k) {
	case "id", "firstName", "lastName", "randomName", "email", "phone", "backOfficeData", "apiKey":
		return true
	}
	return false
}

// The members each nested object's typed copy models; the others are kept
// in its `extra`.
func isBackOfficeField(k []byte) bool { return string(k) == "key" || string(k) == "value" }

func isAssigneeField(k []byte) bool {
	switch string(k) {
	case "id", "firstName", "lastName", "email", "isBot":
		return true
	}
	return false
}

func isMessageField(k []byte) bool {
	switch string(k) {
	case "message", "timestamp", "author":
		return true
	}
	return false
}

func isAuthorField(k []byte) bool {
	switch string(k) {
	case "id", "role", "email", "phone":
		return true
	}
	return false
}

func decode(r *normalize.Reader, root *fastjson.Value) *hookstreamv1.CloserConversation {
	r.Require(root, "eventType")
	r.Require(root, "timestamp")
	r.Require(root, "customer")
	c := &hookstreamv1.CloserConversation{
		EventType: r.String(root, "eventType"),
		Email:     r.String(root, "email"),
		Phone:     r.String(root, "phone"),
	}
	if t := r.Time(root, "timestamp"); !t.IsZero() {
		c.Timestamp = t.UnixMilli()
	}
	if s, ok := r.OptString(root, "closedType"); ok {
		c.ClosedType = &s
	}
	if cust := r.Object(root, "customer"); cust != nil {
		r.Enter("customer")
		c.Customer = &hookstreamv1.CloserCustomer{
			Id:         r.ID(cust, "id"),
			FirstName:  r.String(cust, "firstName"),
			LastName:   r.String(cust, "lastName"),
			RandomName: r.String(cust, "randomName"),
			Email:      r.String(cust, "email"),
			Phone:      r.String(cust, "phone"),
		}
		entries := r.Array(cust, "backOfficeData")
		if len(entries) > 0 {
			r.Enter("backOfficeData")
			c.Customer.BackOfficeData = make([]*hookstreamv1.CloserBackOfficeEntry, 0, len(entries))
			for i, e := range entries {
				r.EnterIndex(i)
				if e.Type() != fastjson.TypeObject {
					r.Fail(hookstreamv1.RejectionCode_REJECTION_CODE_WRONG_SHAPE, "", "must be an object with key and value")
				}
				key, _ := r.OptText(e, "key")
				val, _ := r.OptText(e, "value")
				c.Customer.BackOfficeData = append(c.Customer.BackOfficeData, &hookstreamv1.CloserBackOfficeEntry{Key: key, Value: val,
					Extra: r.Extra(e, isBackOfficeField)})
				r.Leave()
			}
			r.Leave()
		}
		c.Customer.Extra = r.Extra(cust, isCustomerField)
		r.Leave()
	}
	if a := r.Object(root, "assignee"); a != nil {
		r.Enter("assignee")
		c.Assignee = &hookstreamv1.CloserAssignee{
			Id:        r.ID(a, "id"),
			FirstName: r.String(a, "firstName"),
			LastName:  r.String(a, "lastName"),
			Email:     r.String(a, "email"),
		}
		c.Assignee.IsBot, _ = r.OptBool(a, "isBot")
		c.Assignee.Extra = r.Extra(a, isAssigneeField)
		r.Leave()
	}
	if msgs := r.Array(root, "messageHistory"); len(msgs) > 0 {
		r.Enter("messageHistory")
		c.MessageHistory = make([]*hookstreamv1.CloserMessage, 0, len(msgs))
		for i, m := range msgs {
			r.EnterIndex(i)
			if m.Type() != fastjson.TypeObject {
				r.Fail(hookstreamv1.RejectionCode_REJECTION_CODE_WRONG_SHAPE, "", "must be an object")
			}
			msg := &hookstreamv1.CloserMessage{}
			msg.Message, _ = r.OptText(m, "message")
			if t := r.Time(m, "timestamp"); !t.IsZero() {
				msg.Timestamp = t.UnixMilli()
			}
			if a := r.Object(m, "author"); a != nil {
				r.Enter("author")
				msg.Author = &hookstreamv1.CloserAuthor{
					Id:    r.ID(a, "id"),
					Role:  r.String(a, "role"),
					Email: r.String(a, "email"),
					Phone: r.String(a, "phone"),
				}
				msg.Author.Extra = r.Extra(a, isAuthorField)
				r.Leave()
			}
			msg.Extra = r.Extra(m, isMessageField)
			c.MessageHistory = append(c.MessageHistory, msg)
			r.Leave()
		}
		r.Leave()
	}
	c.Extra = r.Extra(root, isTopLevel)
	return c
}

func build(in normalize.Input, c *hookstreamv1.CloserConversation) *hookstreamv1.Event {
	cust := c.GetCustomer()
	ev := &hookstreamv1.Event{
		Id:         eventID(in.Source, c),
		Source:     in.Source,
		Vendor:     hookstreamv1.Vendor_VENDOR_CLOSER,
		Type:       Type(c.GetEventType()),
		VendorType: c.GetEventType(),
		OccurredAt: timestamppb.New(normalize.FromMillis(c.GetTimestamp())),
		ReceivedAt: timestamppb.New(in.ReceivedAt),
		Subject:    &hookstreamv1.Subject{Kind: "conversation", Id: cust.GetId(), Name: customerName(cust)},
		Payload:    &hookstreamv1.Event_Closer{Closer: c},
	}
	contact := &hookstreamv1.Contact{
		Id:    cust.GetId(),
		Name:  customerName(cust),
		Email: normalize.FirstNonEmpty(cust.GetEmail(), c.GetEmail()),
		Phone: normalize.FirstNonEmpty(cust.GetPhone(), c.GetPhone()),
	}
	ev.Contact = contact
	switch a := c.GetAssignee(); {
	case a != nil:
		kind := hookstreamv1.ActorKind_ACTOR_KIND_AGENT
		if a.GetIsBot() {
			kind = hookstreamv1.ActorKind_ACTOR_KIND_BOT
		}
		ev.Actor = &hookstreamv1.Actor{Kind: kind, Id: a.GetId(), Name: normalize.JoinName(a.GetFirstName(), a.GetLastName()), Email: a.GetEmail()}
	case strings.HasSuffix(ev.GetType(), ".created"):
		// The visitor opens a conversation by writing to the widget.
		ev.Actor = &hookstreamv1.Actor{Kind: hookstreamv1.ActorKind_ACTOR_KIND_CUSTOMER, Id: contact.GetId(), Name: contact.GetName(), Email: contact.GetEmail()}
	}
	return ev
}

// Type derives the canonical type from a Closer eventType: the `Event`
// suffix is dropped, `Thread` is the conversation entity, and the rest is
// the action (`ThreadClosedEvent` → `conversation.closed`). Other names
// split at their first word: `AgentLoginEvent` → `agent.login`; a single
// word is a conversation action.
func Type(eventType string) string {
	name := strings.TrimSuffix(eventType, "Event")
	if rest, ok := strings.CutPrefix(name, "Thread"); ok && rest != "" {
		return normalize.Type("conversation", rest)
	}
	words := normalize.Snake(name)
	if entity, action, ok := strings.Cut(words, "_"); ok {
		return normalize.Type(entity, action)
	}
	return normalize.Type("conversation", words)
}

// eventID keys a delivery on what distinguishes one Closer event from
// another, since Closer sends no event id: the event type, the customer and
// the event time in ms, plus (for closed events) the assignee and the size
// and end of the transcript.
func eventID(source string, c *hookstreamv1.CloserConversation) string {
	var buf [6]string // every part below, on the stack
	parts := append(buf[:0], c.GetEventType(), c.GetCustomer().GetId(), strconv.FormatInt(c.GetTimestamp(), 10))
	if a := c.GetAssignee(); a != nil {
		parts = append(parts, a.GetId())
	}
	if h := c.GetMessageHistory(); len(h) > 0 {
		parts = append(parts, strconv.Itoa(len(h)), strconv.FormatInt(h[len(h)-1].GetTimestamp(), 10))
	}
	return normalize.EventID(source, hookstreamv1.Vendor_VENDOR_CLOSER, parts...)
}

// customerName is the visitor's real name, or the generated pseudonym for
// anonymous visitors.
func customerName(c *hookstreamv1.CloserCustomer) string {
	if n := normalize.JoinName(c.GetFirstName(), c.GetLastName()); n != "" {
		return n
	}
	return c.GetRandomName()
}
