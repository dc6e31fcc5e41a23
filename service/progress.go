package service

import (
	"context"
	"encoding/binary"
	"net"
	"reflect"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// Subscribe streams measure their progress in bytes.
//
// A client that reads slowly but steadily must not be taken for one that
// stopped: a 1 MB event at 40 KB/s keeps the stream's next Send blocked for
// 25 s. gRPC does not tell a handler how far its messages have got, so the
// server's connections are wrapped (ProgressCredentials) and the HTTP/2
// frames they carry are watched: the DATA bytes written for a stream are
// what its client has accepted (flow control holds the rest back), and a
// stream is over on the wire once its trailers (or a reset, or the end of
// the connection) have gone by, which is when what it still held (its
// queued messages, its place among the open streams) is given back.

// ProgressCredentials wraps the server's transport credentials (insecure
// ones for plaintext) so that Subscribe streams served through them
// measure progress in bytes. Without it streams fall back to timing each
// Send, and give back what they hold when their handler returns.
func ProgressCredentials(c credentials.TransportCredentials) credentials.TransportCredentials {
	return progressCreds{c}
}

type progressCreds struct {
	credentials.TransportCredentials
}

func (p progressCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := p.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return conn, info, err
	}
	return newProgressConn(conn), info, nil
}

func (p progressCreds) Clone() credentials.TransportCredentials {
	return progressCreds{p.TransportCredentials.Clone()}
}

// HTTP/2 frame types and flags that matter here (RFC 9113, section 6).
const (
	frameData      = 0x0
	frameHeaders   = 0x1
	frameRSTStream = 0x3
	flagEndStream  = 0x1
	frameHeaderLen = 9
)

// clientPreface starts every HTTP/2 connection from the client.
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// progressConn follows the HTTP/2 frames of one server connection: DATA
// bytes written per tracked stream, and the end of each tracked stream
// (trailers or a reset written, a reset read, or the connection closed).
type progressConn struct {
	net.Conn
	out, in frameScanner

	mu      sync.Mutex
	streams map[uint32]*streamProgress
	closed  bool
	// Streams reset before their handler began tracking them.
	early    [64]uint32
	earlyPos int
}

func newProgressConn(c net.Conn) *progressConn {
	p := &progressConn{Conn: c, streams: map[uint32]*streamProgress{}}
	p.in.skip = len(clientPreface)
	return p
}

// progressAddr is the connection's remote address, carrying the connection
// so that a handler can find it: gRPC hands handlers their peer's address.
type progressAddr struct {
	net.Addr
	conn *progressConn
}

func (c *progressConn) RemoteAddr() net.Addr { return progressAddr{c.Conn.RemoteAddr(), c} }

func (c *progressConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.scan(&c.out, p[:n], true)
	}
	return n, err
}

func (c *progressConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.scan(&c.in, p[:n], false)
	}
	return n, err
}

func (c *progressConn) Close() error {
	c.mu.Lock()
	c.closed = true
	var ended []*streamProgress
	for id, sp := range c.streams {
		delete(c.streams, id)
		ended = append(ended, sp)
	}
	c.mu.Unlock()
	for _, sp := range ended {
		sp.end()
	}
	return c.Conn.Close()
}

// frameScanner walks a stream of HTTP/2 frames, one direction of a
// connection, across reads or writes of any size.
type frameScanner struct {
	skip int // bytes to pass over first (the client preface)
	hdr  [frameHeaderLen]byte
	hdrN int
	left int // payload bytes of the current frame still to come
	data *streamProgress
}

// scan follows p through the frames: written DATA counts for its stream;
// written trailers or resets, and read resets, end their stream.
func (c *progressConn) scan(f *frameScanner, p []byte, written bool) {
	var ended []*streamProgress
	c.mu.Lock()
	for len(p) > 0 {
		if f.skip > 0 {
			k := min(f.skip, len(p))
			f.skip -= k
			p = p[k:]
			continue
		}
		if f.left > 0 {
			k := min(f.left, len(p))
			if f.data != nil {
				f.data.written.Add(int64(k))
			}
			f.left -= k
			p = p[k:]
			continue
		}
		k := copy(f.hdr[f.hdrN:], p)
		f.hdrN += k
		p = p[k:]
		if f.hdrN < frameHeaderLen {
			break
		}
		f.hdrN = 0
		f.left = int(f.hdr[0])<<16 | int(f.hdr[1])<<8 | int(f.hdr[2])
		typ, flags := f.hdr[3], f.hdr[4]
		id := binary.BigEndian.Uint32(f.hdr[5:9]) & 0x7fffffff
		sp := c.streams[id]
		f.data = nil
		if written && typ == frameData {
			f.data = sp
		}
		end := typ == frameRSTStream || written && (typ == frameHeaders || typ == frameData) && flags&flagEndStream != 0
		switch {
		case !end:
		case sp != nil:
			delete(c.streams, id)
			ended = append(ended, sp)
		case typ == frameRSTStream && id != 0:
			c.early[c.earlyPos] = id
			c.earlyPos = (c.earlyPos + 1) % len(c.early)
		}
	}
	c.mu.Unlock()
	for _, sp := range ended {
		sp.end()
	}
}

// track starts following stream id; nil when it has already ended.
func (c *progressConn) track(id uint32) *streamProgress {
	sp := &streamProgress{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		sp.end()
		return sp
	}
	for _, e := range c.early {
		if e == id {
			sp.end()
			return sp
		}
	}
	c.streams[id] = sp
	return sp
}

// streamProgress is what the wire says about one stream.
type streamProgress struct {
	written atomic.Int64 // DATA payload bytes written (messages and their 5-byte prefixes)

	mu    sync.Mutex
	ended bool
	then  func()
}

// Written is how many bytes of the stream's messages have been written
// to the connection.
func (sp *streamProgress) Written() int64 { return sp.written.Load() }

// afterEnd runs fn once the stream is over on the wire (at once if it is).
func (sp *streamProgress) afterEnd(fn func()) {
	sp.mu.Lock()
	if !sp.ended {
		sp.then = fn
		sp.mu.Unlock()
		return
	}
	sp.mu.Unlock()
	fn()
}

func (sp *streamProgress) end() {
	sp.mu.Lock()
	if sp.ended {
		sp.mu.Unlock()
		return
	}
	sp.ended = true
	fn := sp.then
	sp.then = nil
	sp.mu.Unlock()
	if fn != nil {
		fn()
	}
}

// trackStream follows the stream of a handler's context on the wire; nil
// when the server does not use ProgressCredentials, when the stream's
// messages are compressed (their wire size is not known), or when gRPC
// does not reveal the stream's HTTP/2 id.
func trackStream(ctx context.Context) *streamProgress {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil
	}
	addr, ok := p.Addr.(progressAddr)
	if !ok {
		return nil
	}
	ts := grpc.ServerTransportStreamFromContext(ctx)
	if c, ok := ts.(interface{ SendCompress() string }); ok && c.SendCompress() != "" && c.SendCompress() != "identity" {
		return nil
	}
	id := transportStreamID(ts)
	if id == 0 {
		return nil
	}
	return addr.conn.track(id)
}

// transportStreamID reads the HTTP/2 stream id of a gRPC server stream.
// gRPC keeps it unexported, so it is read by reflection;
// TestTransportStreamID fails if a gRPC upgrade moves it (streams then
// fall back to timing their sends).
func transportStreamID(ts grpc.ServerTransportStream) uint32 {
	v := reflect.ValueOf(ts)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return 0
	}
	v = v.Elem()
	if v.Kind() != reflect.Struct {
		return 0
	}
	f := v.FieldByName("id")
	if !f.IsValid() || f.Kind() != reflect.Uint32 {
		return 0
	}
	return uint32(f.Uint())
}
