// Browser test of alerts: `duplex demo` with DUPLEX_ALERT_WEBHOOK pointing at
// a receiver in this test (loopback only). Pausing the demo connection while
// a change waits opens one alert: one notice, a row on #/alerts and the
// sidebar count; activating it sends one recovery notice.
//
//   npm run test:browser            (needs bin/duplex built with the app: make build)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../..");
const bin = process.env.DUPLEX_BIN || join(root, "bin/duplex");
const out = process.env.TEST_OUTPUT || join(here, "../test-output");
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
mkdirSync(out, { recursive: true });

let demo, data, url, token, browser, page, receiver;
const notices = [];

function listen() {
  receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (b) => (body += b));
    req.on("end", () => {
      notices.push(JSON.parse(body));
      res.writeHead(204).end();
    });
  });
  return new Promise((ok) => receiver.listen(0, "127.0.0.1", () => ok(`http://127.0.0.1:${receiver.address().port}/hook`)));
}

function startDemo(hook) {
  data = mkdtempSync(join(tmpdir(), "duplex-e2e-alerts-"));
  const env = { ...process.env, DUPLEX_ALERT_WEBHOOK: hook, DUPLEX_ALERT_INTERVAL: "300ms" };
  demo = spawn(bin, ["demo", "--data", data, "--addr", "127.0.0.1:0", "--poll", "300ms"], { stdio: ["ignore", "pipe", "pipe"], env });
  let banner = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("demo printed no URL within 20 s:\n" + banner)), 20000);
    demo.stdout.on("data", (b) => {
      banner += b;
      const m = /running: (http:\/\/\S+)/.exec(banner);
      const t = /Bearer (dpx_[\w-]+)"/.exec(banner); // the whole token, up to its closing quote
      if (m && t) {
        clearTimeout(timer);
        token = t[1];
        ok(m[1]);
      }
    });
    demo.stderr.on("data", () => {});
    demo.on("exit", (code) => fail(new Error(`demo exited (${code}):\n${banner}`)));
  });
}

const post = (path) => fetch(url + path, { method: "POST", headers: { authorization: `Bearer ${token}` } }).then((r) => assert.equal(r.status, 200, path));
const sql = (db, statement) => execFileSync("sqlite3", [join(data, db), statement], { encoding: "utf8" }).trim();

async function until(what, check, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  url = await startDemo(await listen());
  browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(15000);
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGTERM");
  receiver?.close();
  if (data) rmSync(data, { recursive: true, force: true });
});

test("a paused connection with a change waiting: one alert, shown, then one recovery", { timeout: 60000 }, async () => {
  await page.goto(url + "/#/alerts");
  await page.getByText("No open alerts").waitFor();

  await post("/api/connections/1/pause");
  sql("support.db", "UPDATE tickets SET labels = 'account,todev' WHERE id = 2");
  await until("the opening notice", () => notices.length >= 1);

  await until("the alert row", async () => {
    await page.reload();
    return (await page.locator('[data-testid^="alert-"]').count()) === 1;
  });
  const row = page.locator('[data-testid^="alert-"]');
  assert.match(await row.innerText(), /support-escalation.*paused with changes waiting/s);
  assert.match(await row.innerText(), /notified/);
  assert.equal((await page.locator('[data-testid="alerts-link"] .badge').innerText()).trim(), "1");
  assert.equal(await page.locator("nav.side a.on").count(), 1); // only Alerts is lit
  await page.screenshot({ path: join(out, "alerts-open.png"), fullPage: true });

  await post("/api/connections/1/activate");
  await until("the recovery notice", () => notices.length >= 2);
  await new Promise((r) => setTimeout(r, 1000)); // nothing more may come
  assert.deepEqual(
    notices.map((n) => [n.event, n.alert.kind]),
    [
      ["alert.opened", "paused"],
      ["alert.resolved", "paused"],
    ],
  );
  await page.reload();
  await page.getByText("No open alerts").waitFor();
  await page.getByText("Recently resolved").waitFor();
  assert.equal(await page.locator('[data-testid="alerts-link"] .badge').count(), 0);
  await page.screenshot({ path: join(out, "alerts-resolved.png"), fullPage: true });
});
