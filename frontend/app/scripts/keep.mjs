// vite empties ../dist on every build; the Go embed needs the folder to exist
// in a fresh clone, so it holds a committed, empty .keep.
import { writeFileSync } from "node:fs";
writeFileSync(new URL("../../dist/.keep", import.meta.url), "");
