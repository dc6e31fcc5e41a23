// Package ui serves the web inspector: the assets built from ui/src into
// ui/dist (by ui/build.mjs, committed so the binary builds without Node),
// embedded in the binary.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// Prefix is the path the inspector is served under.
const Prefix = "/ui/"

// securityHeaders go on every answer of the inspector. The policy allows
// scripts, styles and API calls from this origin only: no inline script
// or style, nothing from a CDN, no framing (the inspector holds an API
// token), and no referrer that could carry a URL out.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self' data:; font-src 'self'; manifest-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
	"X-Content-Type-Options":       "nosniff",
	"Referrer-Policy":              "no-referrer",
	"X-Frame-Options":              "DENY",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
	"Permissions-Policy":           "camera=(), microphone=(), geolocation=(), payment=()",
}

type asset struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the inspector under Prefix: /ui/ is its page, the other
// files are its script, styles and icon. The assets hold no data and need
// no token; everything the inspector shows comes from the APIs, with the
// API token the user logs in with. routeError answers what it does not
// serve (404, or 405 with the Allow header set), so that the inspector's
// misses have the API's error shape (gateway.RouteError).
func Handler(routeError func(w http.ResponseWriter, r *http.Request, code int)) (http.Handler, error) {
	assets := map[string]asset{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(body)
		}
		assets[strings.TrimPrefix(p, "dist/")] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range securityHeaders {
			w.Header().Set(k, v)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			routeError(w, r, http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		if r.URL.Path == strings.TrimSuffix(Prefix, "/") {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		if name == "" {
			name = "index.html"
		}
		a, ok := assets[name]
		if !ok {
			routeError(w, r, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", a.contentType)
		// Asset names carry no hash, so browsers check back each time;
		// the ETag makes that a 304.
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("ETag", a.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	}), nil
}
