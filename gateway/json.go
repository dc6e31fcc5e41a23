package gateway

import (
	"bytes"
	"io"
	"reflect"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// JSON bodies of REST and Connect calls ignore members they do not know
// (a newer client's fields), but not enum names they do not know:
// protojson's DiscardUnknown drops both, so "format": "EVENT_JSNO" made
// an endpoint of the default format instead of an error. A body is read
// strictly first and read again ignoring what is unknown only when the
// strict read failed on an unknown member.

// unmarshalJSON reads data into m as described above.
func unmarshalJSON(data []byte, m proto.Message, resolver protojson.UnmarshalOptions) error {
	strict := resolver
	strict.DiscardUnknown = false
	err := strict.Unmarshal(data, m)
	if err != nil && strings.Contains(err.Error(), "unknown field") {
		lenient := resolver
		lenient.DiscardUnknown = true
		proto.Reset(m)
		return lenient.Unmarshal(data, m)
	}
	return err
}

// restJSON is grpc-gateway's JSON marshaler with that reading.
type restJSON struct{ runtime.JSONPb }

func (j *restJSON) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if rv := reflect.ValueOf(v); !ok && rv.Kind() == reflect.Pointer && rv.Elem().Kind() == reflect.Pointer {
		// A body that is one field of the request (body: "endpoint")
		// comes as a pointer to that field.
		if rv.Elem().IsNil() {
			rv.Elem().Set(reflect.New(rv.Elem().Type().Elem()))
		}
		m, ok = rv.Elem().Interface().(proto.Message)
	}
	if ok {
		return unmarshalJSON(data, m, j.UnmarshalOptions)
	}
	return j.JSONPb.Unmarshal(data, v)
}

func (j *restJSON) NewDecoder(r io.Reader) runtime.Decoder {
	return runtime.DecoderFunc(func(v any) error {
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(data)) == 0 {
			return io.EOF // no body, as grpc-gateway's own decoder says it
		}
		return j.Unmarshal(data, v)
	})
}

// connectJSON is vanguard's JSON codec with that reading, which leaves
// unset fields out of what it writes (as REST and the README say: JSON
// leaves a 0 out) and calls a body that does not parse INVALID_ARGUMENT
// (it was a 500 "unknown").
type connectJSON struct{ *vanguard.JSONCodec }

func newConnectJSON(res vanguard.TypeResolver) vanguard.Codec {
	c := vanguard.NewJSONCodec(res)
	c.MarshalOptions.EmitUnpopulated = false
	return connectJSON{c}
}

func (c connectJSON) Unmarshal(data []byte, m proto.Message) error {
	if err := unmarshalJSON(data, m, c.UnmarshalOptions); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}
