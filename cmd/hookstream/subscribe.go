package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

// streamFlags select the events of tail and listen.
type streamFlags struct {
	filter string
	from   string
	source string
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
		if t, err := time.Parse(time.RFC3339Nano, from); err == nil {
			req.Start = &hookstreamv1.SubscribeRequest_StartTime{StartTime: timestamppb.New(t)}
		} else {
			req.Start = &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: from}
		}
	}
	return req, nil
}

// follow runs a Subscribe stream until ctx ends, calling handle for each
// delivery in order. A broken stream is reopened with backoff after the
// cursor of the last delivery handled, so nothing is missed or repeated;
// before the first delivery it is reopened where it started (a stream
// that started "now" is reopened at the time it first opened). Errors that
// retrying cannot fix (a bad filter or token) are returned; the end of ctx
// returns nil.
func follow(ctx context.Context, client hookstreamv1.EventServiceClient, first *hookstreamv1.SubscribeRequest,
	stderr io.Writer, handle func(context.Context, *hookstreamv1.EventDelivery) error) error {
	const minBackoff, maxBackoff = 250 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	var cursor string
	var openedAt time.Time
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
		}
		if errors.Is(err, io.EOF) {
			err = errors.New("stream ended")
		}
		fmt.Fprintf(stderr, "hookstream: stream broken (%v); reconnecting in %s\n", err, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// handlerError is a failure of the delivery handler, which ends follow.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }
