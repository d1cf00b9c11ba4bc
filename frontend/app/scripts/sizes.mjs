// Prints what the browser loads, part by part (bundle.mjs), raw and gzipped,
// and fails the build when the first load grows past its budget.
import { human, measure } from "./bundle.mjs";

const BUDGET_GZIP = 60 * 1024; // first load, JS + CSS, gzipped (as the server sends it)

const parts = measure();
for (const p of parts) console.log(`${p.label.padEnd(28)} ${human(p.raw).padStart(10)} raw ${human(p.gzip).padStart(10)} gzip  (${p.files.join(", ")})`);
const first = parts[0];
if (first.gzip > BUDGET_GZIP) {
  console.error(`first load is ${human(first.gzip)} gzipped, over the ${human(BUDGET_GZIP)} budget`);
  process.exit(1);
}
