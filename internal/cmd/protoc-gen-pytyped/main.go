// Command protoc-gen-pytyped is a protoc plugin (run by buf, see
// buf.gen.yaml) that writes the PEP 561 marker `py.typed` into every
// Python package directory of the files it is asked to generate, and into
// their parents: the generated modules ship .pyi stubs, and type checkers
// use them for an installed package only when the marker is there.
// hookstream and hookstream/v1 are namespace packages (no __init__.py),
// so each level gets one.
package main

import (
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/pluginpb"
)

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "protoc-gen-pytyped:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var req pluginpb.CodeGeneratorRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	// It reads no file's content, so every feature is as good as supported.
	resp := pluginpb.CodeGeneratorResponse{
		SupportedFeatures: proto.Uint64(uint64(pluginpb.CodeGeneratorResponse_FEATURE_PROTO3_OPTIONAL)),
	}
	for _, dir := range packageDirs(req.GetFileToGenerate()) {
		resp.File = append(resp.File, &pluginpb.CodeGeneratorResponse_File{
			Name: proto.String(dir + "/py.typed"), Content: proto.String(""),
		})
	}
	b, err := proto.Marshal(&resp)
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// packageDirs returns the directories of files and all their parents,
// sorted.
func packageDirs(files []string) []string {
	var dirs []string
	for _, f := range files {
		for d := path.Dir(f); d != "." && d != "/"; d = path.Dir(d) {
			if !slices.Contains(dirs, d) {
				dirs = append(dirs, d)
			}
		}
	}
	slices.Sort(dirs)
	return dirs
}
