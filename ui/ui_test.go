package ui

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func serve(t *testing.T, h http.Handler, method, path string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// The page, and every asset it names, is served with the security
// headers and no inline script or style.
func TestHandler(t *testing.T) {
	var misses []int
	h, err := Handler(func(w http.ResponseWriter, _ *http.Request, code int) {
		misses = append(misses, code)
		w.WriteHeader(code)
	})
	if err != nil {
		t.Fatal(err)
	}
	page := serve(t, h, http.MethodGet, "/ui/", nil)
	if page.Code != http.StatusOK || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %s", page.Code, page.Header().Get("Content-Type"))
	}
	body := page.Body.String()
	if regexp.MustCompile(`<script>|<script[^>]*>[^<]| style=`).MatchString(body) {
		t.Errorf("the page has inline script or style:\n%s", body)
	}
	for k, v := range securityHeaders {
		if got := page.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	csp := page.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(refs) < 3 {
		t.Fatalf("the page names %d assets, want the script, the styles and the icon", len(refs))
	}
	for _, m := range refs {
		rec := serve(t, h, http.MethodGet, "/ui/"+m[1], nil)
		if rec.Code != http.StatusOK || rec.Body.Len() == 0 || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET /ui/%s: %d, %d bytes", m[1], rec.Code, rec.Body.Len())
		}
		// Unchanged assets cost a 304.
		again := serve(t, h, http.MethodGet, "/ui/"+m[1], http.Header{"If-None-Match": {rec.Header().Get("ETag")}})
		if again.Code != http.StatusNotModified {
			t.Errorf("GET /ui/%s with its ETag: %d, want 304", m[1], again.Code)
		}
	}
	if rec := serve(t, h, http.MethodGet, "/ui/nope.js", nil); rec.Code != http.StatusNotFound {
		t.Errorf("an unknown asset: %d, want 404", rec.Code)
	}
	if rec := serve(t, h, http.MethodPost, "/ui/", nil); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", rec.Code)
	}
	if want := []int{http.StatusNotFound, http.StatusMethodNotAllowed}; !slices.Equal(misses, want) {
		t.Errorf("routeError got %v, want %v", misses, want)
	}
	if rec := serve(t, h, http.MethodGet, "/ui", nil); rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", rec.Code, rec.Header().Get("Location"))
	}
}
