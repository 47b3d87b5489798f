// Builds dist/ (index.html, app.js, app.css; only ./ references) from src/.
//   npm run build   writes dist/
//   npm run check   rebuilds in memory and fails if dist/ is not what src/ builds to
import { mkdir, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const dist = here("./dist");
const check = process.argv.includes("--check");

// small-webrtc-transport imports daily-js only for the DailyMediaManager this
// page replaces (see src/daily-stub.ts).
const stubDaily = {
  name: "stub-daily-js",
  setup(build) {
    build.onResolve({ filter: /^@daily-co\/daily-js$/ }, () => ({
      path: here("./src/daily-stub.ts"),
    }));
  },
};

const result = await esbuild.build({
  entryPoints: { app: here("./src/main.ts") },
  outdir: dist,
  write: false,
  bundle: true,
  minify: true,
  format: "iife",
  target: ["chrome111", "firefox115", "safari16"],
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
  plugins: [stubDaily],
});

const files = new Map(result.outputFiles.map((f) => [basename(f.path), Buffer.from(f.contents)]));
// The page's markup, without the indentation and line breaks between tags (every container in it
// lays out with flex or grid, where whitespace between elements is not rendered).
const html = (await readFile(here("./src/index.html"), "utf8"))
  .split("\n")
  .map((line) => line.trim())
  .filter(Boolean)
  .join("");
files.set("index.html", Buffer.from(`${html}\n`));

if (check) {
  const stale = [];
  const present = new Set(await readdir(dist).catch(() => []));
  for (const [name, bytes] of files) {
    const old = present.has(name) ? await readFile(`${dist}/${name}`) : null;
    if (!old || !old.equals(bytes)) stale.push(name);
    present.delete(name);
  }
  stale.push(...[...present].map((n) => `${n} (not built from src)`));
  if (stale.length) {
    console.error(`dist/ is out of date: ${stale.join(", ")}. Run: npm ci && npm run build`);
    process.exit(1);
  }
  console.log("dist/ matches src/");
} else {
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist);
  for (const [name, bytes] of files) {
    await writeFile(`${dist}/${name}`, bytes);
    console.log(`dist/${name}  ${(bytes.length / 1024).toFixed(1)} KiB`);
  }
}
