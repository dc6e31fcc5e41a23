package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
	"github.com/hookstream/hookstream/service/delivery/webhook"
)

const listenHelp = `Usage: hookstream listen --forward-to URL [--filter CEL] [--source S] [--from …] [--secret whsec_…]

Subscribes to events and POSTs each one, as the Event in protobuf JSON, to
URL, signed with Standard Webhooks headers (webhook-id = the event id,
webhook-timestamp, webhook-signature) like a hookstream endpoint would. The
signing secret (whsec_…) is printed at start; pass --secret to keep one
across runs. Each response status is printed. A failed POST (no answer or
a non-2xx status) is retried with backoff (1 s doubling to 30 s, or the
receiver's Retry-After) until it succeeds or Ctrl-C; events are forwarded
one at a time, in order, and a broken stream resumes after the last
event forwarded. Any address is allowed, loopback and private ones
included: the URL is yours.

  hookstream listen --forward-to http://127.0.0.1:3000/webhooks --source pipedrive

A server that has not answered within --connect-timeout of the start, or
a cursor past the log's end (CURSOR_PAST_END), ends it with exit 1.

Exit codes: 0 stopped with Ctrl-C, 1 failure (bad filter, token, URL or
secret, no server, a cursor past the log's end), 2 usage error.

Flags:
`

func listen(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var sf streamFlags
	var target, secret string
	fs := flag.NewFlagSet("listen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	fs.StringVar(&target, "forward-to", "", "URL to POST each event to (required)")
	fs.StringVar(&secret, "secret", "", "signing secret whsec_… (default: a new one, printed at start)")
	sf.register(fs)
	fs.Usage = func() { fmt.Fprint(stderr, listenHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("listen takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	if target == "" {
		return usagef("--forward-to is required")
	}
	if err := webhook.CheckURL(target, true); err != nil {
		return fmt.Errorf("--forward-to: %w", err)
	}
	if secret == "" {
		var err error
		if secret, err = webhook.NewSecret(); err != nil {
			return err
		}
	}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return fmt.Errorf("--secret: %w", err)
	}
	req, err := sf.request()
	if err != nil {
		return err
	}
	conn, err := cf.dial("read")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	client := webhook.NewClient(webhook.Options{AllowNetworks: []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"),
	}})
	defer client.Close()
	fmt.Fprintf(stdout, "Forwarding events to %s\nSigning secret: %s\n", target, secret)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return follow(ctx, conn, req, sf.giveUp, stderr,
		func(ctx context.Context, d *hookstreamv1.EventDelivery) error {
			ev := d.GetEvent()
			body, ct, err := webhook.Encode(ev, hookstreamv1.EndpointFormat_ENDPOINT_FORMAT_EVENT_JSON)
			if err != nil {
				return err
			}
			const minBackoff, maxBackoff = time.Second, 30 * time.Second
			backoff := minBackoff
			for attempt := 1; ; attempt++ {
				res := client.Send(ctx, webhook.Request{URL: target, ID: ev.GetId(), Body: body, ContentType: ct, Keys: [][]byte{key}})
				if ctx.Err() != nil {
					return nil // follow returns nil once ctx is done
				}
				outcome := fmt.Sprint(res.Status)
				if res.Status == 0 {
					outcome = "no answer"
				}
				if res.Err != "" {
					outcome += " (" + res.Err + ")"
				}
				fmt.Fprintf(stdout, "%s %s %s -> %s\n", ev.GetId(), ev.GetSource(), termSafe(ev.GetType()), outcome)
				if res.OK() {
					return nil
				}
				wait := backoff
				if res.RetryAfter > wait {
					wait = min(res.RetryAfter, 10*time.Minute)
				}
				fmt.Fprintf(stderr, "hookstream: attempt %d failed; retrying in %s\n", attempt, wait)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
				backoff = min(backoff*2, maxBackoff)
			}
		})
}
