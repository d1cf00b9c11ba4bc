// The README's bundle table against the build (bundle.mjs): every part the
// build measures has a row, and each figure is within 10 % of the measure, so
// the README cannot drift far from what `npm run build` prints.
// Needs the app built (make app); `make test-frontend` builds it first.
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
