// Builds the package: copies the generated TypeScript (gen/ts at the root
// of the repository) into src/gen, so the package holds all it needs, and
// compiles src to dist with tsc (JavaScript and .d.ts).
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));

rmSync(here("./dist"), { recursive: true, force: true });
rmSync(here("./src/gen"), { recursive: true, force: true });
cpSync(here("../../gen/ts"), here("./src/gen"), { recursive: true });

const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
const run = spawnSync(process.execPath, [tsc, "-p", here("./tsconfig.json")], { stdio: "inherit" });
process.exit(run.status ?? 1);
