// Builds the inspector: ui/src → ui/dist (index.html, app.js, app.css,
// icon.svg), which the Go package ui embeds. The output depends on the
// sources and the pinned esbuild alone (no timestamps, no content hashes
// in names), so scripts/test.sh can rebuild it and fail when the
// committed copy is stale, as it does for gen/.
//
// Usage: node ui/build.mjs
import { create, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ui = dirname(fileURLToPath(import.meta.url));
const src = join(ui, "src");
const dist = join(ui, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist);
const common = {
  bundle: true,
  minify: true,
  target: ["es2022", "chrome110", "firefox115", "safari16"],
  logLevel: "warning",
  legalComments: "eof",
  charset: "utf8",
};
// The hookstream descriptors import those of the option-only protos
// (protovalidate rules, google.api.http, OpenAPI annotations). The
// inspector never reads those options, so each is replaced by an empty
// file of the same name and package: they were a third of the bundle.
const optionProtos = {
  "buf/validate/validate_pb.js": ["file_buf_validate_validate", "buf/validate/validate.proto", "buf.validate"],
  "google/api/annotations_pb.js": ["file_google_api_annotations", "google/api/annotations.proto", "google.api"],
  "protoc-gen-openapiv2/options/annotations_pb.js": ["file_protoc_gen_openapiv2_options_annotations",
    "protoc-gen-openapiv2/options/annotations.proto", "grpc.gateway.protoc_gen_openapiv2.options"],
};
const optionsOnly = {
  name: "options-only",
  setup(b) {
    b.onResolve({ filter: /_pb\.js$/ }, (args) => {
      const key = Object.keys(optionProtos).find((k) => args.path.endsWith(`/${k}`));
      return key ? { path: key, namespace: "options-only" } : undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "options-only" }, (args) => {
      const [symbol, name, pkg] = optionProtos[args.path];
      const file = base64Encode(toBinary(FileDescriptorProtoSchema, create(FileDescriptorProtoSchema, { name, package: pkg })));
      return {
        contents: `import { fileDesc } from "@bufbuild/protobuf/codegenv2"; export const ${symbol} = fileDesc(${JSON.stringify(file)});`,
        resolveDir: ui,
        loader: "js",
      };
    });
  },
};
await build({
  ...common, entryPoints: [join(src, "main.ts")], outfile: join(dist, "app.js"), format: "esm", platform: "browser",
  plugins: [optionsOnly],
});
await build({ ...common, entryPoints: [join(src, "style.css")], outfile: join(dist, "app.css") });
for (const f of ["index.html", "icon.svg"]) await copyFile(join(src, f), join(dist, f));

for (const f of (await readdir(dist)).sort()) {
  console.log(`ui/dist/${f}\t${(await stat(join(dist, f))).size} bytes`);
}
