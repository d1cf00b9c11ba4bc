// Prints what the browser loads first (the files index.html names), the
// account pages (tokens, password, team), the team template pages and the editor chunk (loaded by the
// scripts view), raw and gzipped, and fails the
// build when the first load grows past its budget.
import { readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

const dist = new URL("../../dist/", import.meta.url);
const BUDGET_GZIP = 60 * 1024; // first load, JS + CSS, gzipped (as the server sends it)

const size = (name) => {
  const b = readFileSync(new URL(name, dist));
  return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
};
const kb = (n) => (n / 1024).toFixed(1) + " KiB";
const line = (label, files) => {
  const t = files.map(size).reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 });
  console.log(`${label.padEnd(28)} ${kb(t.raw).padStart(10)} raw ${kb(t.gzip).padStart(10)} gzip  (${files.join(", ")})`);
  return t;
};

const index = readFileSync(new URL("index.html", dist), "utf8");
const first = [...index.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const assets = readdirSync(new URL("assets/", dist)).map((f) => "assets/" + f);
const firstLoad = line("first load (index.html)", first);
line("account pages (JS)", assets.filter((f) => /\/account-.*\.js$/.test(f)));
line("team templates (JS)", assets.filter((f) => /\/templates-.*\.js$/.test(f)));
line("editor chunk (JS)", assets.filter((f) => /\/monaco-.*\.js$/.test(f)));
line("editor chunk (CSS)", assets.filter((f) => /\/monaco-.*\.css$/.test(f)));
line("editor language (JS)", assets.filter((f) => /\/(tsMode|javascript)-.*\.js$/.test(f)));
line("editor workers", assets.filter((f) => /worker-.*\.js$/.test(f)));
if (firstLoad.gzip > BUDGET_GZIP) {
  console.error(`first load is ${kb(firstLoad.gzip)} gzipped, over the ${kb(BUDGET_GZIP)} budget`);
  process.exit(1);
}
