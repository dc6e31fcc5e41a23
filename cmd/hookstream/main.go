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
	"slices"
)

const usage = `hookstream receives webhooks from Closer, Pipedrive and ClinchPad,
normalizes them into canonical events and streams them over gRPC.

Usage:
  hookstream serve [flags]                      run the service
  hookstream version                            print the version, commit and Go version
  hookstream tail [flags]                       stream events to the terminal
  hookstream send --source S (FILE | --example NAME)
                                                post a sample webhook to a source
  hookstream listen --forward-to URL [flags]    forward events as signed webhooks
  hookstream events get ID                      show one event
  hookstream quarantine list|show ID|reprocess ID|discard --yes ID
                                                inspect, reprocess and discard quarantined requests
  hookstream config check FILE                  validate a config, print it with secrets masked
  hookstream token new --scope read|admin       make an API token for api.tokens
  hookstream help [command]                     show help

Run 'hookstream <command> --help' for a command's flags.

Client commands find the server with --addr (gRPC, default 127.0.0.1:9090)
and --token, else HOOKSTREAM_ADDR and HOOKSTREAM_TOKEN, else the config
generated on first start (<data-dir>/hookstream.generated.yaml, --data-dir
default ./data).

Exit codes: 0 success, 1 failure, 2 usage error.
`

// usageError marks an error in the command line: exit code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// loggedError is an error the command has logged already, in the log's
// format: exitCode does not print it again.
type loggedError struct{ err error }

func (e loggedError) Error() string { return e.err.Error() }
func (e loggedError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(exitCode(run(os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

// exitCode prints err and maps it to the documented exit codes: 0 for
// success and --help, 2 for a usage error, 1 for anything else.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if !errors.As(err, new(loggedError)) {
		fmt.Fprintln(stderr, "hookstream:", err)
	}
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

type command func(args []string, stdout, stderr io.Writer) error

func commands() map[string]command {
	return map[string]command{
		"serve":      serve,
		"version":    version,
		"tail":       tail,
		"send":       send,
		"listen":     listen,
		"events":     events,
		"quarantine": quarantine,
		"config":     configCmd,
		"token":      tokenCmd,
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmds := commands()
	switch args[0] {
	case "help", "-h", "--help":
		if len(args) > 1 {
			if c, ok := cmds[args[1]]; ok {
				return c(append(args[2:], "--help"), stdout, stdout)
			}
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	if c, ok := cmds[args[0]]; ok {
		if asksHelp(args[1:]) {
			// Help that was asked for is output (`hookstream tail --help |
			// less`); usage shown for a mistake stays on stderr.
			stderr = stdout
		}
		return c(args[1:], stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usagef("unknown command %q", args[0])
}

// asksHelp reports whether args, before a "--", hold -h or --help.
func asksHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--h", "--help":
			return true
		}
	}
	return false
}

// parseFlags parses args with fs, turning a bad flag into a usage error.
// Unlike the flag package alone, flags may follow the arguments
// (`events get ID --json`), as in most command-line tools; after "--"
// everything is an argument. fs.Args() then holds the arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return usageError{err}
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...) // Parse stopped at "--"
			break
		}
		i := slices.IndexFunc(rest, func(a string) bool { return len(a) > 1 && a[0] == '-' })
		if i < 0 {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[:i]...)
		args = rest[i:]
	}
	// Leave the arguments where fs.Args() finds them.
	return fs.Parse(append([]string{"--"}, pos...))
}
