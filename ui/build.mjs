// Builds the inspector: ui/src → ui/dist (index.html, app.js, app.css,
// icon.svg), which the Go package ui embeds. The output depends on the
// sources and the pinned esbuild alone (no timestamps, no content hashes
// in names), so scripts/test.sh can rebuild it and fail when the
// committed copy is stale, as it does for gen/.
//
// Usage: node ui/build.mjs
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
await build({ ...common, entryPoints: [join(src, "main.ts")], outfile: join(dist, "app.js"), format: "esm", platform: "browser" });
await build({ ...common, entryPoints: [join(src, "style.css")], outfile: join(dist, "app.css") });
for (const f of ["index.html", "icon.svg"]) await copyFile(join(src, f), join(dist, f));

for (const f of (await readdir(dist)).sort()) {
  console.log(`ui/dist/${f}\t${(await stat(join(dist, f))).size} bytes`);
}
