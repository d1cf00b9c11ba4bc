// measure reads the built app in frontend/dist and returns what the browser
// loads, part by part, raw and gzipped (as the server sends it): the first
// load (the files index.html names), the account pages, the team template
// pages, the peer links page, the editor chunk (loaded by the scripts view), its language and its
// workers. sizes.mjs prints it after each build; readme.test.mjs holds the
// README's table to it.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { gzipSync } from "node:zlib";

export const dist = new URL("../../dist/", import.meta.url);
export const built = () => existsSync(new URL("index.html", dist));

const size = (name) => {
  const b = readFileSync(new URL(name, dist));
  return { raw: b.length, gzip: gzipSync(b, { level: 9 }).length };
};

export function measure() {
  const index = readFileSync(new URL("index.html", dist), "utf8");
  const first = [...index.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
  const assets = readdirSync(new URL("assets/", dist)).map((f) => "assets/" + f);
  const part = (label, files) => ({ label, files, ...files.map(size).reduce((a, s) => ({ raw: a.raw + s.raw, gzip: a.gzip + s.gzip }), { raw: 0, gzip: 0 }) });
  return [
    part("first load (index.html)", first),
    part("account pages (JS)", assets.filter((f) => /\/account-.*\.js$/.test(f))),
    part("team templates (JS)", assets.filter((f) => /\/templates-.*\.js$/.test(f))),
    part("peer links (JS)", assets.filter((f) => /\/peers-.*\.js$/.test(f))),
    part("editor chunk (JS)", assets.filter((f) => /\/monaco-.*\.js$/.test(f))),
    part("editor chunk (CSS)", assets.filter((f) => /\/monaco-.*\.css$/.test(f))),
    part("editor language (JS)", assets.filter((f) => /\/(tsMode|javascript)-.*\.js$/.test(f))),
    part("editor workers", assets.filter((f) => /worker-.*\.js$/.test(f))),
  ];
}

/** human writes a size as the build prints it: KiB below 1 MiB, MiB above, one decimal. */
export const human = (n) => (n < 1024 * 1024 ? (n / 1024).toFixed(1) + " KiB" : (n / 1024 / 1024).toFixed(1) + " MiB");
