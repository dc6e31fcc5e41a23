package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

const eventsHelp = `Usage: hookstream events get [--raw=false] [--json] ID

Shows one event (EventService.GetEvent) as indented protobuf JSON, followed
by the vendor's original request body (secrets redacted), pretty-printed
when it is JSON. --json prints only the GetEvent answer, one line.

  hookstream events get 9f2c0d…

Exit codes: 0 found, 1 failure (not found, bad token), 2 usage error.

Flags:
`

func events(args []string, stdout, stderr io.Writer) error {
	var cf clientFlags
	var raw, asJSON bool
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf.register(fs)
	fs.BoolVar(&raw, "raw", true, "also fetch and show the vendor's request body")
	fs.BoolVar(&asJSON, "json", false, "print the answer as one line of protobuf JSON")
	fs.Usage = func() { fmt.Fprint(stderr, eventsHelp); fs.PrintDefaults() }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 || fs.Arg(0) != "get" {
		fs.Usage()
		return usagef("usage: hookstream events get ID")
	}
	if err := parseFlags(fs, fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("usage: hookstream events get ID")
	}
	conn, err := cf.dial("read")
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := hookstreamv1.NewEventServiceClient(conn).GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: fs.Arg(0), IncludeRaw: raw})
	if err != nil {
		return err
	}
	if asJSON {
		b, err := protojson.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", jsonTermSafe(b))
		return err
	}
	ev := proto.CloneOf(resp.GetEvent())
	r := ev.GetRaw()
	ev.Raw = nil
	b, err := prettyProto(ev)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cursor: %s\n%s\n", resp.GetCursor(), b)
	if r != nil {
		fmt.Fprintf(stdout, "\nRequest body (%s):\n%s\n", r.GetContentType(), readableBody(r.GetBodyText(), r.GetBody()))
	}
	return nil
}

// readableBody is a request body for people: indented when it is JSON, the
// text when it is UTF-8, else a note with its size.
func readableBody(text string, body []byte) string {
	if text == "" && len(body) > 0 {
		return fmt.Sprintf("(%d bytes, not UTF-8)", len(body))
	}
	var b bytes.Buffer
	if json.Indent(&b, []byte(text), "", "  ") == nil {
		return string(jsonTermSafe(b.Bytes()))
	}
	return termSafeText(text)
}

// prettyProto is m as protobuf JSON indented with two spaces (protojson's
// own multiline output varies its spacing on purpose).
func prettyProto(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	return jsonTermSafe(out.Bytes()), nil
}
