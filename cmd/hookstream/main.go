// Command hookstream receives vendor webhooks, normalizes them into
// canonical events, stores them in NATS JetStream and streams them to
// internal services.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `hookstream receives webhooks from Closer, Pipedrive and ClinchPad,
normalizes them into canonical events and streams them over gRPC.

Usage:
  hookstream serve [flags]    run the service
  hookstream help [command]   show help

Run 'hookstream serve --help' for the serve flags.
`

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hookstream:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		if len(args) > 1 && args[1] == "serve" {
			return serve([]string{"--help"}, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
