package service

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/emptypb"
)

// frame is an HTTP/2 frame header plus a payload of n zero bytes.
func frame(typ, flags byte, stream uint32, n int) []byte {
	b := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[5:], stream)
	return append(b, make([]byte, n)...)
}

// recordConn is a net.Conn that keeps what is written and reads from r.
type recordConn struct {
	net.Conn
	w bytes.Buffer
	r *bytes.Reader
}

func (c *recordConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *recordConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *recordConn) Close() error                { return nil }

// The connection wrapper counts DATA bytes per stream whatever the sizes
// of the writes that carry them, and ends a stream at its trailers, at a
// reset either way, or when the connection closes.
func TestProgressConnFollowsFrames(t *testing.T) {
	var in bytes.Buffer
	in.WriteString(clientPreface)
	in.Write(frame(frameHeaders, 0x4|flagEndStream, 5, 10)) // a request: not an end for the server's side
	in.Write(frame(frameRSTStream, 0, 7, 4))                // the client gives up stream 7
	in.Write(frame(frameRSTStream, 0, 9, 4))                // and 9, before its handler tracks it
	c := newProgressConn(&recordConn{r: bytes.NewReader(nil)})
	c.Conn.(*recordConn).r = bytes.NewReader(in.Bytes())
	s1, s3, s5, s7 := c.track(1), c.track(3), c.track(5), c.track(7)
	var ended []int
	for i, sp := range []*streamProgress{s1, s3, s5, s7} {
		sp.afterEnd(func() { ended = append(ended, 2*i+1) })
	}

	var out bytes.Buffer
	out.Write(frame(0x4, 0, 0, 6))             // SETTINGS
	out.Write(frame(frameHeaders, 0x4, 1, 20)) // response headers of stream 1
	out.Write(frame(frameData, 0, 1, 16384))   // data of stream 1
	out.Write(frame(frameData, 0, 3, 100))     // data of stream 3
	out.Write(frame(frameData, 0, 1, 1000))    // more of stream 1
	out.Write(frame(frameHeaders, 0x5, 1, 30)) // trailers of stream 1: it is over
	out.Write(frame(frameData, 0, 5, 7))       // data of stream 5
	written := out.Bytes()
	for len(written) > 0 { // in odd-sized pieces
		n := min(len(written), 777)
		if _, err := c.Write(written[:n]); err != nil {
			t.Fatal(err)
		}
		written = written[n:]
	}
	if s1.Written() != 17384 || s3.Written() != 100 || s5.Written() != 7 {
		t.Fatalf("written: stream 1 %d, 3 %d, 5 %d; want 17384, 100, 7", s1.Written(), s3.Written(), s5.Written())
	}
	buf := make([]byte, 5)
	for {
		if _, err := c.Read(buf); err != nil {
			break
		}
	}
	if len(ended) != 2 || ended[0] != 1 || ended[1] != 7 {
		t.Fatalf("ended %v, want streams 1 (trailers) and 7 (reset)", ended)
	}
	if s9 := c.track(9); !s9.ended {
		t.Error("a stream reset before it was tracked was not taken as ended")
	}
	_ = c.Close()
	if len(ended) != 4 {
		t.Fatalf("ended %v after close, want every stream", ended)
	}
}

// Streams find their HTTP/2 id and their connection through gRPC, which
// keeps the id unexported: this fails if a gRPC upgrade moves it.
func TestTransportStreamID(t *testing.T) {
	lis := bufconn.Listen(1 << 20)
	got := make(chan *streamProgress, 2)
	ids := make(chan uint32, 2)
	srv := grpc.NewServer(grpc.Creds(ProgressCredentials(insecure.NewCredentials())),
		grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
			ids <- transportStreamID(grpc.ServerTransportStreamFromContext(stream.Context()))
			got <- trackStream(stream.Context())
			return nil
		}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for want := uint32(1); want <= 3; want += 2 {
		_ = conn.Invoke(context.Background(), "/test.Any/Call", &emptypb.Empty{}, &emptypb.Empty{})
		if id := <-ids; id != want {
			t.Fatalf("stream id %d, want %d", id, want)
		}
		if sp := <-got; sp == nil {
			t.Fatal("the stream could not be tracked")
		}
	}
}
