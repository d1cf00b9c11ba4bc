// Shared parts of the browser tests: where the binary, Chromium and the
// screenshots are, how Chromium is started, how `duplex demo` is started,
// and the guard every page gets (console errors and requests to any host
// but the app are collected, and such requests are refused).
//
//   DUPLEX_BIN=… CHROMIUM=… TEST_OUTPUT=… override the defaults.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
export const bin = process.env.DUPLEX_BIN || join(root, "bin/duplex");
export const out = process.env.TEST_OUTPUT || join(here, "../test-output");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(out, { recursive: true });

/** launchBrowser starts headless Chromium with no network of its own: the closed network here refuses its background connections. */
export function launchBrowser() {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * startDemo runs `duplex demo` in a new data folder on a free loopback port
 * and resolves with the process, the folder, the URL and the API token the
 * banner prints.
 */
export function startDemo({ prefix = "duplex-e2e-", poll = "300ms", env = {} } = {}) {
  const data = mkdtempSync(join(tmpdir(), prefix));
  const proc = spawn(bin, ["demo", "--data", data, "--addr", "127.0.0.1:0", "--poll", poll], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let banner = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("demo printed no URL and token within 20 s:\n" + banner)), 20000);
    proc.stdout.on("data", (b) => {
      banner += b;
      const m = /running: (http:\/\/\S+)/.exec(banner);
      const tok = /Bearer (dpx_[\w-]+)"/.exec(banner); // the whole token, up to its closing quote
      if (m && tok) {
        clearTimeout(timer);
        ok({ proc, data, url: m[1], token: tok[1] });
      }
    });
    proc.stderr.on("data", () => {}); // logs; keep the pipe drained
    proc.on("exit", (code) => fail(new Error(`demo exited (${code}):\n${banner}`)));
  });
}

/**
 * guard collects the page's console errors (but those whose text matches
 * expected) and uncaught errors into errors, and refuses and records any
 * request to a host other than the app on 127.0.0.1.
 */
export async function guard(context, page, errors, expected) {
  page.on("console", (m) => m.type() === "error" && !(expected && expected.test(m.text())) && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  await context.route(/^(?!http:\/\/127\.0\.0\.1)/, (route) => {
    errors.push("external request: " + route.request().url());
    return route.abort();
  });
}
