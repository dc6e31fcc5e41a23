package main

import (
	"context"
	"encoding/base64"
)

// closerTmpl is the headline payload: a Closer conversation.closed event of
// about 1.5 KB. %d is the event timestamp (epoch ms), unique per request,
// which makes each delivery a distinct event.
const closerTmpl = `{"eventType":"ThreadClosedEvent","timestamp":%d,"closedType":"solved",` +
	`"customer":{"id":"5f0c2a8e-3b1d-4c7a-9e21-7d4b8f6a1c30","apiKey":"9b7e1d20-44aa-4f0e-8c3b-2a6f5e9d7b11",` +
	`"firstName":"Anna","lastName":"Kowalska","randomName":"Quiet Otter","email":"anna@example.com","phone":"+48500100200",` +
	`"backOfficeData":[{"key":"currentPage","value":"https://shop.example.com/pricing"},{"key":"currentPageTitle","value":"Pricing"},` +
	`{"key":"browserName","value":"Chrome"},{"key":"operatingSystem","value":"Mac OS X 14.5"}]},` +
	`"assignee":{"id":"a1c9e0f2-0000-4000-8000-000000000007","firstName":"Piotr","lastName":"Nowak","email":"piotr@shop.example.com","isBot":false},` +
	`"messageHistory":[` +
	`{"author":{"id":"5f0c2a8e-3b1d-4c7a-9e21-7d4b8f6a1c30","role":"CUSTOMER","email":"anna@example.com","phone":"+48500100200"},"message":"Hi, is the Pro plan billed yearly or monthly?","timestamp":1718000010000},` +
	`{"author":{"id":"a1c9e0f2-0000-4000-8000-000000000007","role":"ADVISER","email":"piotr@shop.example.com","phone":null},"message":"Either: monthly, or yearly with two months free.","timestamp":1718000040000},` +
	`{"author":{"id":"5f0c2a8e-3b1d-4c7a-9e21-7d4b8f6a1c30","role":"CUSTOMER","email":"anna@example.com","phone":"+48500100200"},"message":"Great, and can I switch later?","timestamp":1718000070000},` +
	`{"author":{"id":"a1c9e0f2-0000-4000-8000-000000000007","role":"ADVISER","email":"piotr@shop.example.com","phone":null},"message":"Yes, any time from the billing page.","timestamp":1718000100000}]}`

// pipedriveTmpl is a v2 change.deal; %d twice: the event id and entity id.
const pipedriveTmpl = `{"meta":{"action":"change","entity":"deal","entity_id":"%[2]d","id":"3f6b2d1e-8c4a-4e0b-9a7d-%012[1]d",` +
	`"correlation_id":"c0a8012e-77d5-4d1f-b1e2-9f3a6d2c4b10","company_id":"7730215","user_id":"1904417","webhook_id":"884121",` +
	`"webhook_owner_id":"1904417","timestamp":"2024-06-10T08:00:00.512Z","version":"2.0","type":"general","is_bulk_edit":false,` +
	`"change_source":"app","attempt":1,"host":"acme.pipedrive.com","permitted_user_ids":["1904417","1904522"]},` +
	`"data":{"id":4812,"title":"Acme – 50 seats","value":12000,"currency":"EUR","status":"open","stage_id":3,"pipeline_id":1,` +
	`"person_id":221,"org_id":87,"owner_id":1904417,"creator_user_id":1904417,"label_ids":[],"probability":null,` +
	`"expected_close_date":null,"lost_reason":null,"origin":"ManuallyCreated","origin_id":null,"channel":null,"channel_id":null,` +
	`"visible_to":"3","add_time":"2024-05-02T09:14:11Z","update_time":"2024-06-10T08:00:00Z","stage_change_time":"2024-06-10T08:00:00Z",` +
	`"close_time":null,"won_time":null,"first_won_time":null,"lost_time":null,` +
	`"custom_fields":{"9f1c0e7d2b4a6c8e0f1a3b5c7d9e1f2a3b4c5d6e":{"type":"varchar","value":"Partner referral"}}},` +
	`"previous":{"stage_id":2,"stage_change_time":"2024-06-01T12:30:00Z","update_time":"2024-06-07T16:02:45Z"}}`

// clinchpadTmpl is a lead:moved activity; %d is the activity id suffix.
const clinchpadTmpl = `{"activity":{"_id":"act-%d","created_at":"2024-06-11T01:00:00Z","type":"lead:moved",` +
	`"old_stage_name":"Qualified","new_stage_name":"Proposal","user":{"_id":"65f0aa11b2c3d4e5f6a7b8c9","name":"Ravi Menon",` +
	`"photo_url":"https://example.com/u/ravi.png"}},"lead":{"_id":"6650c0ffee0123456789abcd","name":"Globex – CRM rollout",` +
	`"stage":{"_id":"65f0aa11b2c3d4e5f6a7b8d2","name":"Proposal"},"pipe":{"_id":"65f0aa11b2c3d4e5f6a7b8d0","name":"Default"}},` +
	`"handshake_key":%q}`

func basic(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
}

// bearer sends the API token on every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }
