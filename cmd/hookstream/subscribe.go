package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// streamFlags select the events of tail and listen.
type streamFlags struct {
	filter string
	from   string
	source string
	giveUp time.Duration
}

// register adds the flags tail and listen share.
func (f *streamFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.filter, "filter", "", "`CEL` filter over event (see README, Filters)")
	fs.StringVar(&f.source, "source", "", "only events of this source (adds event.source == \"S\" to the filter)")
	fs.StringVar(&f.from, "from", "now", "where to start: now, beginning, a cursor, an RFC 3339 time,\nor a date (its midnight, UTC)")
	fs.DurationVar(&f.giveUp, "connect-timeout", 30*time.Second,
		"exit 1 if the server has not answered within this long of starting (0: wait for it without limit); once it has, a broken stream is reopened without limit")
}

// request builds the first SubscribeRequest from the flags.
func (f streamFlags) request() (*hookstreamv1.SubscribeRequest, error) {
	req := &hookstreamv1.SubscribeRequest{Filter: f.filter}
	if f.source != "" {
		cond := "event.source == " + strconv.Quote(f.source)
		if req.Filter == "" {
			req.Filter = cond
		} else {
			req.Filter = cond + " && (" + req.Filter + ")"
		}
	}
	switch from := strings.TrimSpace(f.from); from {
	case "", "now":
		req.Start = &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_NOW}
	case "beginning":
		req.Start = &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}
	default:
		t, err := time.Parse(time.RFC3339Nano, from)
		if err != nil {
			t, err = time.Parse(time.DateOnly, from)
		}
		switch {
		case err == nil:
			req.Start = &hookstreamv1.SubscribeRequest_StartTime{StartTime: timestamppb.New(t)}
		case isCursor(from):
			req.Start = &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: from}
		default:
			return nil, usagef("--from %q is not now, beginning, a cursor (each event's \"cursor\" with --json), "+
				"an RFC 3339 time (2026-03-01T09:00:00Z) or a date (2026-03-01)", from)
		}
	}
	return req, nil
}

// isCursor reports whether s looks like a cursor the server issues: a
// position in the log, in decimal.
func isCursor(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// follow runs a Subscribe stream until ctx ends, calling handle for each
// delivery in order. A broken stream is reopened with backoff after the
// cursor of the last delivery handled, so nothing is missed or repeated;
// before the first delivery it is reopened where it started (a stream
// that started "now" is reopened at the time it first opened). Errors that
// retrying cannot fix (a bad filter or token) are returned; the end of ctx
// returns nil.
func follow(ctx context.Context, conn *grpc.ClientConn, first *hookstreamv1.SubscribeRequest, giveUp time.Duration,
	stderr io.Writer, handle func(context.Context, *hookstreamv1.EventDelivery) error) error {
	const minBackoff, maxBackoff = 250 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	var cursor string
	var openedAt time.Time
	client := hookstreamv1.NewEventServiceClient(conn)
	reached := everReady(ctx, conn) // the connection has been up at least once
	for {
		req := first
		switch {
		case cursor != "":
			req = &hookstreamv1.SubscribeRequest{Filter: first.GetFilter(), IncludeRaw: first.GetIncludeRaw(),
				Start: &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: cursor}}
		case !openedAt.IsZero() && (first.GetStart() == nil || first.GetPosition() == hookstreamv1.StartPosition_START_POSITION_NOW):
			req = &hookstreamv1.SubscribeRequest{Filter: first.GetFilter(), IncludeRaw: first.GetIncludeRaw(),
				Start: &hookstreamv1.SubscribeRequest_StartTime{StartTime: timestamppb.New(openedAt)}}
		}
		if openedAt.IsZero() {
			openedAt = time.Now()
		}
		err := func() error {
			sctx, cancel := context.WithCancel(ctx)
			defer cancel()
			stream, err := client.Subscribe(sctx, req)
			if err != nil {
				return err
			}
			for {
				msg, err := stream.Recv()
				if err != nil {
					return err
				}
				d := msg.GetDelivery()
				if d == nil {
					continue // heartbeat
				}
				if err := handle(ctx, d); err != nil {
					return handlerError{err}
				}
				cursor = d.GetCursor()
				backoff = minBackoff
			}
		}()
		if ctx.Err() != nil {
			return nil
		}
		var h handlerError
		if errors.As(err, &h) {
			return h.err
		}
		switch status.Code(err) {
		case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied, codes.NotFound, codes.FailedPrecondition:
			return err
		case codes.OutOfRange:
			// CURSOR_PAST_END: the log ends before the cursor (it was
			// damaged or replaced). Waiting for it to grow past the cursor
			// would skip what comes before, so say where it ends instead.
			hint := "start again with --from beginning or a time"
			if last := errorMetadata(err, "last_cursor"); last != "" {
				hint = "start again with --from " + last + " (the log's last event), --from beginning or a time"
			}
			return fmt.Errorf("%w; %s", err, hint)
		case codes.Unavailable:
			// A server that has not answered once is a wrong address or a
			// server that is down: past giveUp that is an error, not a wait
			// without end. One that answered before is waited for as long
			// as it takes (a restart, a network break).
			if !reached() && giveUp > 0 && time.Since(openedAt) >= giveUp {
				return fmt.Errorf("cannot reach the server (tried for %s; see --connect-timeout): %w", giveUp, err)
			}
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("stream ended")
		}
		wait := backoff
		if !reached() && giveUp > 0 {
			// The last wait ends at --connect-timeout, not a backoff past it.
			wait = max(min(wait, giveUp-time.Since(openedAt)), 0)
		}
		fmt.Fprintf(stderr, "hookstream: stream broken (%v); reconnecting in %s\n", err, wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// everReady reports whether conn has been connected to the server at
// least once (watched until it is, or ctx ends).
func everReady(ctx context.Context, conn *grpc.ClientConn) func() bool {
	var ready atomic.Bool
	go func() {
		for st := conn.GetState(); ; st = conn.GetState() {
			if st == connectivity.Ready {
				ready.Store(true)
				return
			}
			if !conn.WaitForStateChange(ctx, st) {
				return
			}
		}
	}()
	return ready.Load
}

// errorMetadata is the value of key in err's ErrorInfo metadata, or "".
func errorMetadata(err error, key string) string {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if v := info.GetMetadata()[key]; v != "" {
				return v
			}
		}
	}
	return ""
}

// handlerError is a failure of the delivery handler, which ends follow.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
