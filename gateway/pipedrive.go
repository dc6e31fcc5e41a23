package gateway

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// pipedriveAPI serves Pipedrive's webhooks API (`GET`/`POST /webhooks`,
// `DELETE /webhooks/{id}`) under /api/v1, so code written against
// Pipedrive's SDK subscribes to hookstream's copies of Pipedrive events by
// changing its base path. Each webhook is an outbound endpoint
// (EndpointService, through the in-memory connection, with the caller's
// API token), filtered to the action and object asked for over the
// Pipedrive sources, and sent the body as Pipedrive sent it.
type pipedriveAPI struct {
	endpoints hookstreamv1.EndpointServiceClient
	sources   []string
}

// pipedriveBodyLimit caps a request to the compatibility API.
const pipedriveBodyLimit = 64 << 10

// Pipedrive's actions: the current ones and v1's, each naming the
// canonical event types it covers.
var pipedriveActions = map[string][]string{
	"create":  {"created"},
	"added":   {"created"},
	"change":  {"updated", "merged"},
	"updated": {"updated"},
	"merged":  {"merged"},
	"delete":  {"deleted"},
	"deleted": {"deleted"},
	"*":       nil,
}

var pipedriveObject = regexp.MustCompile(`^(\*|[A-Za-z][A-Za-z0-9_]{0,63})$`)

func (p *pipedriveAPI) register(mux *runtime.ServeMux) error {
	for _, r := range []struct {
		method, path string
		h            func(context.Context, http.ResponseWriter, *http.Request, map[string]string)
	}{
		{http.MethodGet, "/api/v1/webhooks", p.list},
		{http.MethodPost, "/api/v1/webhooks", p.create},
		{http.MethodDelete, "/api/v1/webhooks/{id}", p.delete},
	} {
		h := r.h
		if err := mux.HandlePath(r.method, r.path, func(w http.ResponseWriter, req *http.Request, params map[string]string) {
			// Pipedrive's API key: the x-api-token header or the api_token
			// query parameter, here a hookstream API token; or, as with
			// Pipedrive's OAuth, the bearer token of an Authorization header.
			tok := req.Header.Get("x-api-token")
			if tok == "" {
				tok = req.URL.Query().Get("api_token")
			}
			if bearer, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); tok == "" && ok {
				tok = strings.TrimSpace(bearer)
			}
			// A token gRPC metadata cannot carry (a control character)
			// is no token of ours: refused here, not as a transport error.
			if tok == "" || !printableASCII(tok) {
				pipedriveUnauthorized(w)
				return
			}
			ctx := metadata.AppendToOutgoingContext(req.Context(), "authorization", "Bearer "+tok)
			h(ctx, w, req, params)
		}); err != nil {
			return err
		}
	}
	return nil
}

// pipedriveWebhook is Pipedrive's BaseWebhook.
type pipedriveWebhook struct {
	ID               int64   `json:"id"`
	CompanyID        int64   `json:"company_id"`
	OwnerID          int64   `json:"owner_id"`
	UserID           int64   `json:"user_id"`
	EventAction      string  `json:"event_action"`
	EventObject      string  `json:"event_object"`
	SubscriptionURL  string  `json:"subscription_url"`
	Version          string  `json:"version"`
	IsActive         int     `json:"is_active"`
	AddTime          string  `json:"add_time"`
	RemoveTime       *string `json:"remove_time"`
	RemoveReason     *string `json:"remove_reason"`
	Type             string  `json:"type"`
	HTTPAuthUser     *string `json:"http_auth_user"`
	HTTPAuthPassword *string `json:"http_auth_password"`
	LastDeliveryTime *string `json:"last_delivery_time"`
	LastHTTPStatus   *int    `json:"last_http_status"`
	AdminID          int64   `json:"admin_id"`
	Name             string  `json:"name"`
}

// pipedriveTime is how Pipedrive's API writes times.
func pipedriveTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func toPipedrive(ep *hookstreamv1.Endpoint) pipedriveWebhook {
	pd := ep.GetPipedrive()
	out := pipedriveWebhook{
		ID: pd.GetId(), OwnerID: pd.GetUserId(), UserID: pd.GetUserId(), AdminID: pd.GetUserId(),
		EventAction: pd.GetEventAction(), EventObject: pd.GetEventObject(), SubscriptionURL: ep.GetUrl(),
		Version: pd.GetVersion(), Type: "general", Name: pd.GetName(),
		AddTime: pipedriveTime(ep.GetCreateTime().AsTime()),
	}
	switch ep.GetState() {
	case hookstreamv1.EndpointState_ENDPOINT_STATE_ACTIVE:
		out.IsActive = 1
	case hookstreamv1.EndpointState_ENDPOINT_STATE_DISABLED:
		// What Pipedrive's auto-removal is to a webhook, hookstream's
		// disabling (410 Gone, or failing for delivery.disable_after) is
		// to an endpoint, except that it can be resumed. Its update_time
		// is when it was disabled (unless it was edited since).
		if t := ep.GetUpdateTime(); t != nil {
			rt := pipedriveTime(t.AsTime())
			out.RemoveTime = &rt
		}
	}
	if r := ep.GetDisabledReason(); r != "" {
		out.RemoveReason = &r
	}
	// Pipedrive's last attempt. An attempt that got no response (timeout,
	// refused connection), which Pipedrive's dashboard shows as "Error",
	// has a time and a null status: the field is an integer or null, and
	// inventing a status such as 0 or 599 would read as one the receiver
	// sent.
	if t := ep.GetLastAttemptTime(); t != nil {
		lt := pipedriveTime(t.AsTime())
		out.LastDeliveryTime = &lt
		if code := int(ep.GetLastAttemptStatusCode()); code != 0 {
			out.LastHTTPStatus = &code
		}
	}
	if b := ep.GetBasicAuth(); b != nil {
		u := b.GetUsername()
		out.HTTPAuthUser = &u
	}
	return out
}

// list answers GET /api/v1/webhooks: the compatibility webhooks.
func (p *pipedriveAPI) list(ctx context.Context, w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	eps, err := p.all(ctx)
	if err != nil {
		pipedriveGRPCError(w, err)
		return
	}
	data := make([]pipedriveWebhook, 0, len(eps))
	for _, ep := range eps {
		data = append(data, toPipedrive(ep))
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ok", "data": data})
}

// all lists every endpoint made through this API.
func (p *pipedriveAPI) all(ctx context.Context) ([]*hookstreamv1.Endpoint, error) {
	var out []*hookstreamv1.Endpoint
	token := ""
	for {
		resp, err := p.endpoints.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 1000, PageToken: token})
		if err != nil {
			return nil, err
		}
		for _, ep := range resp.GetEndpoints() {
			if ep.GetPipedrive() != nil {
				out = append(out, ep)
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// addWebhookRequest is Pipedrive's AddWebhookRequest.
type addWebhookRequest struct {
	SubscriptionURL  string  `json:"subscription_url"`
	EventAction      string  `json:"event_action"`
	EventObject      string  `json:"event_object"`
	Name             *string `json:"name"`
	UserID           userID  `json:"user_id"`
	HTTPAuthUser     *string `json:"http_auth_user"`
	HTTPAuthPassword *string `json:"http_auth_password"`
	Version          string  `json:"version"`
}

// userID is Pipedrive's user_id: a number, which Pipedrive's API (and so
// hookstream) also takes as a numeric string, as form bodies send it.
type userID int64

func (u *userID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*u = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errBadUserID
	}
	*u = userID(n)
	return nil
}

var errBadUserID = errors.New("user_id must be an integer")

// create answers POST /api/v1/webhooks.
func (p *pipedriveAPI) create(ctx context.Context, w http.ResponseWriter, r *http.Request, _ map[string]string) {
	// A wrong token is refused before the body is looked at, as Pipedrive
	// does: 401, whatever the body.
	if _, err := p.endpoints.ListEndpoints(ctx, &hookstreamv1.ListEndpointsRequest{PageSize: 1}); err != nil {
		pipedriveGRPCError(w, err)
		return
	}
	var req addWebhookRequest
	body, err := io.ReadAll(io.LimitReader(r.Body, pipedriveBodyLimit+1))
	switch {
	case err != nil || len(body) > pipedriveBodyLimit:
		pipedriveBadRequest(w, "body", "unreadable or larger than 64 KiB")
		return
	case strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") &&
		!strings.HasPrefix(strings.TrimSpace(string(body)), "{"):
		// Pipedrive's API takes form bodies too (a JSON body sent with
		// curl -d's default form content type is still JSON).
		form, ferr := url.ParseQuery(string(body))
		if ferr != nil {
			pipedriveBadRequest(w, "body", "not a valid form")
			return
		}
		req = addWebhookRequest{SubscriptionURL: form.Get("subscription_url"), EventAction: form.Get("event_action"),
			EventObject: form.Get("event_object"), Version: form.Get("version")}
		if v := form.Get("user_id"); v != "" {
			n, perr := strconv.ParseInt(v, 10, 64)
			if perr != nil {
				pipedriveBadRequest(w, "user_id", "must be an integer")
				return
			}
			req.UserID = userID(n)
		}
		for k, dst := range map[string]**string{"name": &req.Name, "http_auth_user": &req.HTTPAuthUser, "http_auth_password": &req.HTTPAuthPassword} {
			if form.Has(k) {
				v := form.Get(k)
				*dst = &v
			}
		}
	default:
		if err := json.Unmarshal(body, &req); err != nil {
			if errors.Is(err, errBadUserID) {
				pipedriveBadRequest(w, "user_id", "must be an integer")
				return
			}
			pipedriveBadRequest(w, "body", "not valid JSON: "+err.Error())
			return
		}
	}
	u, err := url.Parse(req.SubscriptionURL)
	switch {
	case req.SubscriptionURL == "":
		pipedriveBadRequest(w, "subscription_url", "is required")
		return
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		pipedriveBadRequest(w, "subscription_url", "invalid or non-reachable URL")
		return
	}
	types, ok := pipedriveActions[req.EventAction]
	if !ok {
		pipedriveBadRequest(w, "event_action", "must be one of create, change, delete, added, updated, deleted, merged, *")
		return
	}
	if !pipedriveObject.MatchString(req.EventObject) {
		pipedriveBadRequest(w, "event_object", "must be a Pipedrive object such as deal, person, activityType, or *")
		return
	}
	// Pipedrive's current API requires a name; its older SDKs (and the
	// webhooks written with them) send none, so a missing one is named
	// after the event, as Pipedrive's webhook events were: "change.deal".
	if req.Name == nil || *req.Name == "" {
		name := req.EventAction + "." + req.EventObject
		req.Name = &name
	}
	if utf8.RuneCountInString(*req.Name) > 255 {
		pipedriveBadRequest(w, "name", "is at most 255 characters")
		return
	}
	switch req.Version {
	case "":
		req.Version = "2.0" // Pipedrive's default since 2025-03-17
	case "1.0", "2.0":
	default:
		pipedriveBadRequest(w, "version", `must be "1.0" or "2.0"`)
		return
	}
	// Every Pipedrive source, also one configured later (nil), or the
	// one named by ?source=.
	var sources []string
	if src := r.URL.Query().Get("source"); src != "" {
		if !slices.Contains(p.sources, src) {
			pipedriveBadRequest(w, "source", fmt.Sprintf("%q is not a configured Pipedrive source (configured: %s)", src, strings.Join(p.sources, ", ")))
			return
		}
		sources = []string{src}
	}
	ep := &hookstreamv1.Endpoint{
		Url: req.SubscriptionURL, Description: *req.Name,
		Filter: pipedriveFilter(sources, types, req.EventObject),
		Format: hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_VENDOR_BODY,
		Pipedrive: &hookstreamv1.PipedriveWebhook{Id: pipedriveID(), EventAction: req.EventAction, EventObject: req.EventObject,
			Name: *req.Name, UserId: int64(req.UserID), Version: req.Version},
	}
	if req.HTTPAuthUser != nil && *req.HTTPAuthUser != "" {
		ep.BasicAuth = &hookstreamv1.BasicAuth{Username: *req.HTTPAuthUser}
		if req.HTTPAuthPassword != nil {
			ep.BasicAuth.Password = *req.HTTPAuthPassword
		}
	}
	resp, err := p.endpoints.CreateEndpoint(ctx, &hookstreamv1.CreateEndpointRequest{Endpoint: ep})
	if err != nil {
		if st := status.Convert(err); st.Code() == codes.InvalidArgument {
			field, text := pipedriveField(st.Message())
			pipedriveBadRequest(w, field, text)
			return
		}
		pipedriveGRPCError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"success": true, "status": "ok", "data": toPipedrive(resp.GetEndpoint())})
}

// pipedriveField names the parameter of addWebhook an endpoint's
// validation error is about, with the error in its words: a field's
// violation reads "endpoint.basic_auth.username: …"; what the endpoint
// service refuses otherwise (an address it may not reach) is the URL's.
func pipedriveField(msg string) (field, text string) {
	for _, f := range [...]struct{ path, field, pattern string }{
		{"endpoint.basic_auth.username: ", "http_auth_user", `must not contain ":" or control characters`},
		{"endpoint.basic_auth.password: ", "http_auth_password", "must not contain control characters"},
		{"endpoint.description: ", "name", ""},
		{"endpoint.url: ", "subscription_url", ""},
	} {
		rest, ok := strings.CutPrefix(msg, f.path)
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "; ") // the first violation
		if strings.Contains(rest, "regex pattern") && f.pattern != "" {
			rest = f.pattern
		}
		return f.field, rest
	}
	return "subscription_url", msg
}

// pipedriveID is a positive id that JavaScript numbers hold exactly.
func pipedriveID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.BigEndian.Uint64(b[:])>>33) + 1 // 1 .. 2^31
}

// pipedriveFilter is the CEL filter of a compatibility webhook: Pipedrive
// events of the sources (nil: of every Pipedrive source, whenever it was
// configured), of the object (as its canonical entity), of the
// action's canonical types.
func pipedriveFilter(sources, types []string, object string) string {
	var conds []string
	conds = append(conds, "event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE")
	if len(sources) > 0 {
		quoted := make([]string, len(sources))
		for i, s := range sources {
			quoted[i] = strconv.Quote(s)
		}
		conds = append(conds, "event.source in ["+strings.Join(quoted, ", ")+"]")
	}
	entity := pipedriveEntity(object)
	var alts []string
	switch {
	case object == "*" && types == nil:
	case object == "*":
		for _, t := range types {
			alts = append(alts, "event.type.endsWith("+strconv.Quote("."+t)+")")
		}
	case types == nil:
		alts = append(alts, "event.subject.kind == "+strconv.Quote(entity))
	default:
		for _, t := range types {
			alts = append(alts, "event.type == "+strconv.Quote(entity+"."+t))
		}
	}
	if len(alts) > 0 {
		conds = append(conds, "("+strings.Join(alts, " || ")+")")
	}
	return strings.Join(conds, " && ")
}

// pipedrivePlurals are the plural object names some of Pipedrive's older
// documentation uses ("deleted.persons"), each with the object it means.
var pipedrivePlurals = map[string]string{
	"activities": "activity", "activityTypes": "activityType", "deals": "deal", "leads": "lead", "notes": "note",
	"organizations": "organization", "persons": "person", "pipelines": "pipeline", "products": "product",
	"stages": "stage", "users": "user",
}

// pipedriveEntity is the entity hookstream's Pipedrive normalizer names an
// object's events with: activityType → activity_type (TestPipedriveFilter
// holds it to the normalizer's golden events); a plural is taken as its
// object.
func pipedriveEntity(object string) string {
	if one, ok := pipedrivePlurals[object]; ok {
		object = one
	}
	var b strings.Builder
	for i, r := range object {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// delete answers DELETE /api/v1/webhooks/{id}.
func (p *pipedriveAPI) delete(ctx context.Context, w http.ResponseWriter, _ *http.Request, params map[string]string) {
	// The token first (a wrong one is 401 whatever the id), then the id.
	eps, err := p.all(ctx)
	if err != nil {
		pipedriveGRPCError(w, err)
		return
	}
	id, err := strconv.ParseInt(params["id"], 10, 64)
	if err != nil || id <= 0 {
		pipedriveNotFound(w)
		return
	}
	for _, ep := range eps {
		if ep.GetPipedrive().GetId() != id {
			continue
		}
		if _, err := p.endpoints.DeleteEndpoint(ctx, &hookstreamv1.DeleteEndpointRequest{Id: ep.GetId()}); err != nil {
			pipedriveGRPCError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"success": true, "status": "ok", "data": map[string]int64{"id": id}})
		return
	}
	pipedriveNotFound(w)
}

// Pipedrive's error shapes.

func pipedriveUnauthorized(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]any{"success": false, "error": "unauthorized access", "errorCode": 401,
		"error_info": "Send a hookstream API token as x-api-token or api_token."})
}

func pipedriveBadRequest(w http.ResponseWriter, field, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "status": "error", "error": field + " " + msg,
		"errors": map[string][]string{field: {msg}}})
}

// pipedriveBodyError is writeBodyError in Pipedrive's error shape, for a
// body refused before the token is looked at (it is read first only up
// to the cap).
func pipedriveBodyError(w http.ResponseWriter, err error) {
	st := bodyError(err)
	code := HTTPStatus(st)
	writeJSON(w, code, map[string]any{"success": false, "status": "error", "error": st.Message(), "errorCode": code})
}

func pipedriveNotFound(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotFound, map[string]any{"success": false, "status": "error", "error": "Webhook not found",
		"errors": map[string][]string{"id": {"not found"}}})
}

func pipedriveGRPCError(w http.ResponseWriter, err error) {
	st := status.Convert(err)
	switch st.Code() {
	case codes.Unauthenticated:
		pipedriveUnauthorized(w)
	case codes.PermissionDenied:
		writeJSON(w, http.StatusForbidden, map[string]any{"success": false, "message": "Forbidden",
			"error": "this API token's scope does not allow it (admin is needed to create and delete webhooks)"})
	case codes.NotFound:
		pipedriveNotFound(w)
	case codes.FailedPrecondition, codes.ResourceExhausted:
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "status": "error", "error": st.Message()})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"success": false, "status": "error", "error": st.Message()})
	}
}

// printableASCII says whether s holds only the bytes gRPC metadata can
// carry in a text value (0x20 to 0x7E).
func printableASCII(s string) bool {
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
