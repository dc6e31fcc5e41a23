// Command go-subscriber prints the events matching a CEL filter and resumes
// after the last one it printed when restarted (the cursor is kept in a
// file). HOOKSTREAM_ADDR (default 127.0.0.1:9090) and HOOKSTREAM_TOKEN.
package main

import (
	"cmp"
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	hookstreamv1 "github.com/hookstream/hookstream/gen/go/hookstream/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	conn, err := grpc.NewClient(cmp.Or(os.Getenv("HOOKSTREAM_ADDR"), "127.0.0.1:9090"),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+os.Getenv("HOOKSTREAM_TOKEN"))

	req := &hookstreamv1.SubscribeRequest{Filter: `event.source == "pipedrive" && event.type.startsWith("deal.")`}
	if c, err := os.ReadFile("cursor.txt"); err == nil {
		req.Start = &hookstreamv1.SubscribeRequest_AfterCursor{AfterCursor: string(c)}
	} else {
		req.Start = &hookstreamv1.SubscribeRequest_Position{Position: hookstreamv1.StartPosition_START_POSITION_BEGINNING}
	}
	stream, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	for {
		res, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return // Ctrl-C
			}
			log.Fatal(err) // a bad filter or token, or the server went away
		}
		d := res.GetDelivery()
		if d == nil {
			continue // a heartbeat
		}
		ev := d.GetEvent()
		fmt.Println(ev.GetOccurredAt().AsTime(), ev.GetType(), ev.GetSubject().GetKind(), ev.GetSubject().GetId(), ev.GetId())
		if err := os.WriteFile("cursor.txt", []byte(d.GetCursor()), 0o600); err != nil {
			log.Fatal(err)
		}
	}
}
