package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

const tailHelp = `Usage: hookstream tail [--filter CEL] [--source S] [--from now|beginning|CURSOR|RFC3339] [--json]

Streams events (EventService.Subscribe) until Ctrl-C. On a terminal each
event is one line: time it occurred, source, type, subject (kind/id name)
and contact. With --json, or when stdout is not a terminal, each line is
the delivery as protobuf JSON ({"event": …, "cursor": …}). A broken stream
is reopened with backoff after the last cursor received: no gap, no
duplicate. A server that has not answered within --connect-timeout of the
start, or a cursor past the log's end (CURSOR_PAST_END), ends it with
exit 1.

  hookstream tail
  hookstream tail --from beginning --source pipedrive --json
  hookstream tail --filter 'event.type == "lead.moved"'

Exit codes: 0 stopped with Ctrl-C, 1 failure (bad filter or token, no
server, a cursor past the log's end), 2 usage error.

Flags:
`

func tail(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var sf streamFlags
	var asJSON, asText bool
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	sf.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print each delivery as protobuf JSON, one per line")
	fs.BoolVar(&asText, "text", false, "print readable lines even when stdout is not a terminal")
	fs.Usage = func() { fmt.Fprint(stderr, tailHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("tail takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	req, err := sf.request()
	if err != nil {
		return err
	}
	if !asJSON && !asText {
		f, ok := stdout.(*os.File)
		asJSON = !ok || !isTerminal(f)
	}
	conn, err := cf.dial("read")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return follow(ctx, conn, req, sf.giveUp, stderr,
		func(_ context.Context, d *hookstreamv1.EventDelivery) error {
			if asJSON {
				b, err := protojson.Marshal(d)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(stdout, "%s\n", b)
				return err
			}
			_, err := fmt.Fprintln(stdout, eventLine(d.GetEvent()))
			return err
		})
}

// eventLine is one readable line: time, source, type, subject, contact.
// What the vendor sent is shown through termSafe.
func eventLine(ev *hookstreamv1.Event) string {
	t := ev.GetOccurredAt().AsTime().Local().Format(time.DateTime)
	subj := termSafe(ev.GetSubject().GetKind() + "/" + ev.GetSubject().GetId())
	if n := ev.GetSubject().GetName(); n != "" {
		subj += " " + fmt.Sprintf("%q", n)
	}
	var contact []string
	for _, s := range []string{ev.GetContact().GetName(), ev.GetContact().GetEmail(), ev.GetContact().GetPhone()} {
		if s != "" {
			contact = append(contact, termSafe(s))
		}
	}
	line := fmt.Sprintf("%s  %-10s %-22s %s", t, ev.GetSource(), termSafe(ev.GetType()), subj)
	if len(contact) > 0 {
		line += "  contact: " + strings.Join(contact, ", ")
	}
	return line
}
