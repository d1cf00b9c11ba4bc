// Shared parts of the browser tests: where the binary, Chromium and the
// screenshots are, how Chromium is started, how `duplex demo` is started,
// the guard every page gets (console errors and requests to any host but
// the app are collected, and such requests are refused), and the steps a
// story is made of (a bounded time each, a screenshot that never fails a
// step, a fresh page after a failed step).
//
//   DUPLEX_BIN=… CHROMIUM=… TEST_OUTPUT=… override the defaults.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
export const bin = process.env.DUPLEX_BIN || join(root, "bin/duplex");
export const out = process.env.TEST_OUTPUT || join(here, "../test-output");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(out, { recursive: true });

/**
 * scale stretches every time limit of the browser tests on a loaded machine:
 * 1 up to two runnable tasks per core, then half the load per core, at most 4
 * (so 4 at a load of 16 on two cores). E2E_TIMEOUT_SCALE sets it. Under such
 * load Chromium parses the 3 MiB editor chunk in tens of seconds instead of
 * one, and a fixed 15 s wait failed steps that were only slow.
 */
export const scale = Number(process.env.E2E_TIMEOUT_SCALE) || Math.min(4, Math.max(1, loadavg()[0] / availableParallelism() / 2));
/** ms is a time limit in milliseconds, stretched by scale. */
export const ms = (n) => Math.round(n * scale);
if (scale > 1) console.error(`browser tests: load average ${loadavg()[0].toFixed(1)} on ${availableParallelism()} cores: time limits ×${scale.toFixed(2)}`);

/** launchBrowser starts headless Chromium with no network of its own: the closed network here refuses its background connections. */
export function launchBrowser() {
  return chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/**
 * allowTestTargets makes the store in data (migrating it) and allows, in its
 * outbound policy, what the browser tests reach on purpose: SQLite files the
 * tests make under the temporary folder and receivers on 127.0.0.1 (alert
 * webhooks). The default policy refuses both; this is what an org admin does
 * with `duplex policy allow`.
 */
export function allowTestTargets(data) {
  const run = (...args) => execFileSync(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  run("migrate", "--data", data);
  run("policy", "allow", "--data", data, "--sqlite-dir", tmpdir(), "--note", "browser tests: their SQLite files");
  run("policy", "allow", "--data", data, "--network", "127.0.0.1/32", "--note", "browser tests: alert receivers");
}

/**
 * startDemo runs `duplex demo` in a new data folder on a free loopback port
 * and resolves with the process, the folder, the URL and the API token the
 * banner prints.
 */
export function startDemo({ prefix = "duplex-e2e-", poll = "300ms", env = {} } = {}) {
  const data = mkdtempSync(join(tmpdir(), prefix));
  allowTestTargets(data);
  const proc = spawn(bin, ["demo", "--data", data, "--addr", "127.0.0.1:0", "--poll", poll], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let banner = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("demo printed no URL and token in time:\n" + banner)), ms(20000));
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
  watch(page, errors, expected);
  await refuseOthers(context, errors);
}

/** refuseOthers refuses and records into errors every request of the context to a host other than the app on 127.0.0.1. */
export async function refuseOthers(context, errors) {
  await context.route(/^(?!http:\/\/127\.0\.0\.1)/, (route) => {
    errors.push("external request: " + route.request().url());
    return route.abort();
  });
}

/** watch collects one page's console errors (but the expected ones) and uncaught errors. */
function watch(page, errors, expected) {
  page.on("console", (m) => m.type() === "error" && !(expected && expected.test(m.text())) && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
}

export const progress = (() => {
  const t0 = Date.now();
  return (msg) => process.env.E2E_VERBOSE && console.error(`[${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}`);
})();

/** within rejects when p has not settled after ms (for calls that take no timeout, such as page.evaluate). */
export function within(p, ms, what) {
  let timer;
  const limit = new Promise((_, fail) => (timer = setTimeout(() => fail(new Error(`${what}: no answer within ${ms / 1000} s`)), ms)));
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

/**
 * screenshot keeps what the page shows as evidence in out/name.png; it never
 * fails a step: one that does not come within 10 s × scale is logged (with
 * log, e.g. t.diagnostic) and skipped, and the page then gets up to 15 s ×
 * scale to draw a frame again before the story goes on. It captures the
 * viewport only, after scrolling the locator `at` (when given) into view.
 *
 * Why (issue 19): Chromium finishes a capture it has started even when the
 * caller stopped waiting, and the page draws no frame until then. At a load
 * average near 40 on two cores a full-page capture of the scripts view
 * (1,600 px tall, six editors) took 7-15 s against 2-4.5 s for the
 * viewport, and after a capture cut short the next frame came 10-27 s later.
 * The old tests took full-page shots with the 15 s default: one was cut
 * short, its step failed, the failure took another full-page shot that was
 * cut short too, and every later step timed out on a page that had not
 * drawn, until the story's limit.
 */
export async function screenshot(page, name, { at, log = (m) => console.error(m) } = {}) {
  const path = join(out, name + ".png");
  try {
    if (at) await at.scrollIntoViewIfNeeded({ timeout: ms(3000) });
    await within(page.screenshot({ path, timeout: ms(10000) }), ms(11000), "screenshot");
    return true;
  } catch (e) {
    log(`screenshot ${basename(path)} not taken: ${String(e.message).split("\n")[0]}`);
    await within(page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r()))), ms(15000), "a frame after the screenshot").catch((e2) => log(e2.message));
    return false;
  }
}

/**
 * Tab is a page that a failed step replaces: the next step gets a new page
 * in the same browser context (same cookies, same routes), opened at the
 * address the old one showed, and the old one is closed (which also ends
 * whatever the failed step still waits for). A renderer that stopped drawing
 * then costs one step, not the rest of the story. onPage is told of each new
 * page, for tests that keep it in a variable.
 */
export class Tab {
  constructor(context, { errors, expected, timeout = ms(15000), onPage } = {}) {
    Object.assign(this, { context, errors, expected, timeout, onPage });
  }

  async open() {
    this.page = await this.context.newPage();
    this.page.setDefaultTimeout(this.timeout);
    if (this.errors) watch(this.page, this.errors, this.expected);
    this.onPage?.(this.page);
    return this;
  }

  /** replace opens a new page where the old one was and closes the old one. */
  async replace(log = (m) => console.error(m)) {
    const old = this.page;
    const at = old?.url();
    await this.open();
    if (old) within(old.close({ runBeforeUnload: false }), ms(10000), "closing the failed page").catch((e) => log(e.message));
    if (at && at.startsWith("http")) await this.page.goto(at).catch((e) => log(`reopening ${at}: ${String(e.message).split("\n")[0]}`));
  }
}

/**
 * step runs one part of a story as a subtest with its own time limit. On a
 * failure (or when the limit, 60 s × scale, passes) it keeps a screenshot of the page as
 * failed-<prefix><name>.png and gives the tab a new page, so later steps run
 * on a page that works; the step is reported failed either way.
 */
export function step(t, tab, name, fn, { timeout = ms(60000), prefix = "" } = {}) {
  // node:test's own limit comes after the step's and the recovery's (the failure screenshot, a frame, a new page).
  return t.test(name, { timeout: timeout + ms(90000) }, async (st) => {
    progress(name);
    try {
      await within(fn(), timeout, `step "${name}"`);
    } catch (e) {
      const log = (m) => st.diagnostic(m);
      await screenshot(tab.page, "failed-" + prefix + name.replace(/\W+/g, "-").slice(0, 40), { log });
      await within(tab.replace(log), ms(30000), "a new page").catch((e2) => log(e2.message));
      throw e;
    }
  });
}
