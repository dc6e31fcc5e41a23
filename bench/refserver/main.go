// Command refserver is the load harness's reference: a plain net/http
// server that reads a webhook body, decodes it with encoding/json into a
// struct and answers 200. It is the "bare decode" ceiling hookstream's
// figures are compared with.
//
// With -relay it is also the bare ceiling of outbound delivery: each
// accepted webhook is POSTed, signed, to every relay URL by that URL's
// own -relay-in-flight senders, straight from memory — no log, no
// retries, no records.
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
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
	relay := flag.String("relay", "", "comma-separated URLs to POST every accepted webhook to")
	inFlight := flag.Int("relay-in-flight", 10, "senders per relay URL")
	flag.Parse()
	var r *relayer
	if *relay != "" {
		r = newRelayer(strings.Split(*relay, ","), *inFlight)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, 1<<20))
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
		if r == nil {
			_, _ = w.Write([]byte(`{"status":"accepted"}` + "\n"))
			return
		}
		id := r.enqueue(body)
		_, _ = w.Write([]byte(`{"status":"accepted","event_id":"` + id + `"}` + "\n"))
	})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	log.Fatal(srv.ListenAndServe())
}

type relayJob struct {
	id   string
	body []byte
}

// relayer sends each job to every URL; a URL's queue is served by its own
// senders, so one URL never waits for another.
type relayer struct {
	queues []chan relayJob
	key    []byte
}

func newRelayer(urls []string, inFlight int) *relayer {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: inFlight, IdleConnTimeout: time.Minute,
	}}
	r := &relayer{key: make([]byte, 32)}
	_, _ = rand.Read(r.key)
	for _, u := range urls {
		q := make(chan relayJob, 1<<16)
		r.queues = append(r.queues, q)
		for range inFlight {
			go r.send(client, u, q)
		}
	}
	return r
}

func (r *relayer) enqueue(body []byte) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	for _, q := range r.queues {
		q <- relayJob{id: id, body: body}
	}
	return id
}

// send POSTs its queue's jobs with Standard Webhooks headers, as any
// webhook sender must, and nothing more.
func (r *relayer) send(client *http.Client, url string, q <-chan relayJob) {
	for j := range q {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		mac := hmac.New(sha256.New, r.key)
		mac.Write([]byte(j.id + "." + ts + "."))
		mac.Write(j.body)
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(j.body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", j.id)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
