package auth_test

import (
	"encoding/base64"
	"errors"
	"testing"

	"github.com/hookstream/hookstream/service/auth"
)

func basicHeader(user, pass string) map[string]string {
	return map[string]string{"authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))}
}

func TestAuthenticators(t *testing.T) {
	t.Parallel()
	basic, err := auth.Basic("pipedrive", "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	hs, err := auth.HandshakeKey("s3cr3t-handshake")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Token("0123456789abcdef0123")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		a       auth.Authenticator
		req     auth.Request
		ok      bool
		missing bool
	}{
		{"basic ok", basic, auth.Request{Headers: basicHeader("pipedrive", "correct horse")}, true, false},
		{"basic wrong password", basic, auth.Request{Headers: basicHeader("pipedrive", "wrong")}, false, false},
		{"basic wrong user", basic, auth.Request{Headers: basicHeader("admin", "correct horse")}, false, false},
		{"basic missing", basic, auth.Request{}, false, true},
		{"basic bearer", basic, auth.Request{Headers: map[string]string{"authorization": "Bearer x"}}, false, true},
		{"basic bad base64", basic, auth.Request{Headers: map[string]string{"authorization": "Basic !!!"}}, false, false},
		{"basic lower-case scheme", basic, auth.Request{Headers: map[string]string{"authorization": "basic " + base64.StdEncoding.EncodeToString([]byte("pipedrive:correct horse"))}}, true, false},
		{"handshake body", hs, auth.Request{Body: []byte(`{"handshake_key":"s3cr3t-handshake","lead":{}}`)}, true, false},
		{"handshake query", hs, auth.Request{Params: map[string]string{"handshake_key": "s3cr3t-handshake"}, Body: []byte(`{}`)}, true, false},
		{"handshake wrong", hs, auth.Request{Body: []byte(`{"handshake_key":"nope"}`)}, false, false},
		{"handshake query right body wrong", hs, auth.Request{Params: map[string]string{"handshake_key": "s3cr3t-handshake"}, Body: []byte(`{"handshake_key":"nope"}`)}, false, false},
		{"handshake nested only", hs, auth.Request{Body: []byte(`{"lead":{"handshake_key":"s3cr3t-handshake"}}`)}, false, true},
		{"handshake body after a byte order mark", hs, auth.Request{Body: []byte("\xef\xbb\xbf" + `{"handshake_key":"s3cr3t-handshake"}`)}, true, false},
		{"handshake malformed body", hs, auth.Request{Body: []byte(`{"handshake_key":"s3cr3t-handshake"`)}, false, true},
		// A credential member that is not a string is a wrong credential.
		{"handshake number", hs, auth.Request{Body: []byte(`{"handshake_key":12}`)}, false, false},
		{"handshake null", hs, auth.Request{Body: []byte(`{"handshake_key":null}`)}, false, true},
		// Keys match after unescaping, as the normalizer reads them.
		{"handshake escaped key", hs, auth.Request{Body: []byte(`{"handshake\u005fkey":"s3cr3t-handshake"}`)}, true, false},
		// Every copy must match: identical repeats pass, conflicting ones fail
		// whichever comes first.
		{"handshake repeated", hs, auth.Request{Body: []byte(`{"handshake_key":"s3cr3t-handshake","handshake_key":"s3cr3t-handshake"}`)}, true, false},
		{"handshake repeated, wrong first", hs, auth.Request{Body: []byte(`{"handshake_key":"nope","handshake_key":"s3cr3t-handshake"}`)}, false, false},
		{"handshake repeated, wrong last", hs, auth.Request{Body: []byte(`{"handshake_key":"s3cr3t-handshake","handshake\u005fkey":"nope"}`)}, false, false},
		{"handshake repeated, number", hs, auth.Request{Body: []byte(`{"handshake_key":"s3cr3t-handshake","handshake_key":1}`)}, false, false},
		{"handshake read up front", hs, auth.Request{Body: []byte(`{}`), BodyCredentials: &auth.BodyCredentials{HandshakeKeys: []string{"s3cr3t-handshake"}}}, true, false},
		{"token query", tok, auth.Request{Params: map[string]string{"token": "0123456789abcdef0123"}}, true, false},
		{"token header", tok, auth.Request{Headers: map[string]string{"x-hookstream-token": "0123456789abcdef0123"}}, true, false},
		{"token wrong", tok, auth.Request{Params: map[string]string{"token": "0123456789abcdef012"}}, false, false},
		{"token missing", tok, auth.Request{}, false, true},
		{"token query and header", tok, auth.Request{Params: map[string]string{"token": "0123456789abcdef0123"}, Headers: map[string]string{"x-hookstream-token": "0123456789abcdef0123"}}, true, false},
		{"token query right, header wrong", tok, auth.Request{Params: map[string]string{"token": "0123456789abcdef0123"}, Headers: map[string]string{"x-hookstream-token": "nope"}}, false, false},
		{"token header right, query wrong", tok, auth.Request{Params: map[string]string{"token": "nope"}, Headers: map[string]string{"x-hookstream-token": "0123456789abcdef0123"}}, false, false},
		{"none", auth.None(), auth.Request{}, true, false},
	} {
		err := tc.a.Authenticate(tc.req)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err != nil {
			var f *auth.Failure
			if !errors.As(err, &f) || f.Missing != tc.missing {
				t.Errorf("%s: failure %v, want missing=%v", tc.name, err, tc.missing)
			}
		}
	}
}

func TestConstructorsFailClosed(t *testing.T) {
	t.Parallel()
	if _, err := auth.Basic("", "x"); err == nil {
		t.Error("Basic accepted an empty user")
	}
	if _, err := auth.Basic("u", ""); err == nil {
		t.Error("Basic accepted an empty password")
	}
	if _, err := auth.HandshakeKey(""); err == nil {
		t.Error("HandshakeKey accepted an empty key")
	}
	if _, err := auth.Token("short"); err == nil {
		t.Error("Token accepted a short token")
	}
}

func TestAPITokens(t *testing.T) {
	t.Parallel()
	hashed, err := auth.NewAPITokenHash("ci", auth.ScopeRead,
		"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8") // sha256("password")
	if err != nil {
		t.Fatal(err)
	}
	tokens := auth.NewAPITokens(auth.NewAPIToken("ops", auth.ScopeAdmin, "admin-token-0123456789"), hashed)
	for _, tc := range []struct {
		header string
		name   string
		ok     bool
	}{
		{"Bearer admin-token-0123456789", "ops", true},
		{"bearer password", "ci", true},
		{"Bearer wrong", "", false},
		{"Basic admin-token-0123456789", "", false},
		{"", "", false},
		{"Bearer ", "", false},
	} {
		got, ok := tokens.Check(tc.header)
		if ok != tc.ok || got.Name != tc.name {
			t.Errorf("Check(%q) = %v %v, want %q %v", tc.header, got.Name, ok, tc.name, tc.ok)
		}
	}
	if _, ok := auth.NewAPITokens().Check("Bearer anything"); ok {
		t.Error("an empty token set accepted a token")
	}
	if _, err := auth.NewAPITokenHash("x", auth.ScopeRead, "abc"); err == nil {
		t.Error("short hash accepted")
	}
}
