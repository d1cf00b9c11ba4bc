// The README against what it describes: the bundle table against the build
// (bundle.mjs: every part the build measures has a row, each figure within
// 10 %), and the Go and Node.js versions against go.mod and Vite's engines.
// The table needs the app built (make app); `make test-frontend` builds it first.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { built, human, measure } from "./bundle.mjs";

const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
const bytes = (s) => {
  const m = /^([\d.]+) (KiB|MiB)$/.exec(s.trim());
  assert.ok(m, `not a size: ${s}`);
  return Number(m[1]) * (m[2] === "MiB" ? 1024 * 1024 : 1024);
};

test("the README's bundle table matches the build within 10 %", { skip: !built() && "frontend/dist is not built (make app)" }, () => {
  const rows = new Map();
  for (const m of readme.matchAll(/^\| ([^|]+?) \| ([\d.]+ [KM]iB) \| ([\d.]+ [KM]iB) \|$/gm)) rows.set(m[1], { raw: bytes(m[2]), gzip: bytes(m[3]) });
  for (const p of measure()) {
    const row = rows.get(p.label);
    assert.ok(row, `README.md has no bundle row "${p.label}" (the build measures ${human(p.raw)} raw, ${human(p.gzip)} gzipped)`);
    for (const k of ["raw", "gzip"]) {
      const off = Math.abs(row[k] - p[k]) / p[k];
      assert.ok(off <= 0.1, `README.md says ${p.label} is ${human(row[k])} ${k}, the build measures ${human(p[k])}: update the table`);
    }
  }
});

test("the README names the Go version of go.mod and the Node.js versions Vite needs", () => {
  const gomod = readFileSync(new URL("../../../go.mod", import.meta.url), "utf8");
  const goVersion = /^go (\S+)$/m.exec(gomod)[1];
  assert.ok(readme.includes(`Needs Go ${goVersion} (as \`go.mod\` says)`), `README.md does not say Go ${goVersion}, as go.mod does`);
  const vite = JSON.parse(readFileSync(new URL("../node_modules/vite/package.json", import.meta.url), "utf8"));
  const [older, newer] = vite.engines.node.split("||").map((r) => r.trim().replace(/\.0$/, "")); // "^20.19", ">=22.12"
  const said = /Node\.js `([^`]+)`\s+or `([^`]+)`/.exec(readme);
  assert.ok(said, "README.md names no Node.js versions");
  assert.deepEqual([said[1], said[2].replace(/\s+/g, "")], [older, newer], `Vite needs Node.js ${vite.engines.node}`);
});
