// Command refserver is the load harness's reference: a plain net/http
// server that reads a webhook body, decodes it with encoding/json into a
// struct and answers 200. It is the "bare decode" ceiling hookstream's
// figures are compared with.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"time"
)

// webhook covers the fields of all three vendors' payloads that a
// hand-written handler would decode.
type webhook struct {
	EventType string          `json:"eventType"`
	Timestamp json.Number     `json:"timestamp"`
	Customer  json.RawMessage `json:"customer"`
	Assignee  *struct {
		ID    string `json:"id"`
		IsBot bool   `json:"isBot"`
	} `json:"assignee"`
	MessageHistory []struct {
		Author struct {
			ID   string `json:"id"`
			Role string `json:"role"`
		} `json:"author"`
		Message   string      `json:"message"`
		Timestamp json.Number `json:"timestamp"`
	} `json:"messageHistory"`
	Meta     map[string]any  `json:"meta"`
	Data     map[string]any  `json:"data"`
	Previous map[string]any  `json:"previous"`
	Activity json.RawMessage `json:"activity"`
	Lead     json.RawMessage `json:"lead"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var wh webhook
		if err := json.Unmarshal(body, &wh); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
