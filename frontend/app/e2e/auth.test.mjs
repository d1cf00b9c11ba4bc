// Browser tests of sign-in against `duplex serve` (no automatic sign-in there):
// the first admin comes from DUPLEX_ADMIN_EMAIL / DUPLEX_ADMIN_PASSWORD, signs
// in through the form, creates a personal API token and sees it once, makes a
// viewer whose buttons are disabled, and signs out. A second server without
// the env shows the setup link flow.
//
//   npm run test:browser   (DUPLEX_BIN, CHROMIUM, TEST_OUTPUT as in app.test.mjs)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { allowTestTargets, bin, launchBrowser, ms, refuseOthers, screenshot, step as harnessStep, Tab } from "./harness.mjs";

const ADMIN = { email: "admin@example.com", password: "correct horse battery staple" };
// Two small SQLite tables for the finance team's systems.
const dbs = mkdtempSync(join(tmpdir(), "duplex-e2e-dbs-"));
const ledger = join(dbs, "ledger.db");
const books = join(dbs, "books.db");
for (const db of [ledger, books])
  execFileSync("sqlite3", [db, "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, x TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"]);
const servers = [];
let browser;
const consoleErrors = [];

/**
 * serve starts `duplex serve` on a free loopback port and resolves with its URL
 * and everything it printed so far (the setup link, when there is one).
 */
function serve(env, wantSetupLink = false) {
  const data = mkdtempSync(join(tmpdir(), "duplex-e2e-auth-"));
  allowTestTargets(data);
  const proc = spawn(bin, ["serve", "--data", data, "--addr", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DUPLEX_ADMIN_EMAIL: "", DUPLEX_ADMIN_PASSWORD: "", ...env },
  });
  servers.push({ proc, data });
  let printed = "";
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error("serve printed no URL within 20 s:\n" + printed)), ms(20000));
    const read = (b) => {
      printed += b;
      const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(printed);
      if (m && (!wantSetupLink || /\/setup\?token=[^\s"]+/.test(printed))) {
        clearTimeout(timer);
        ok({ url: m[1], printed });
      }
    };
    proc.stdout.on("data", read);
    proc.stderr.on("data", read);
    proc.on("exit", (code) => fail(new Error(`serve exited (${code}):\n${printed}`)));
  });
}

/** newTab opens a page in a new context (harness.mjs Tab: a failed step leaves a new page); onPage hears of each page. */
async function newTab(onPage) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  // 401s answer GET /api/me before signing in, a wrong password and an ended session;
  // 429 the throttled sign-in: all expected here.
  const tab = await new Tab(context, { errors: consoleErrors, expected: /status of 4(01|29)/, onPage }).open();
  await refuseOthers(context, consoleErrors);
  return tab;
}

function step(t, tab, name, fn) {
  return harnessStep(t, tab, name, fn, { prefix: "auth-" });
}

async function signIn(page, url, email, password) {
  await page.goto(url);
  const form = page.locator('[data-testid="sign-in"]');
  await form.waitFor();
  await form.locator('input[name="email"]').fill(email);
  await form.locator('input[name="password"]').fill(password);
  await form.locator('button[type="submit"]').click();
}

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const s of servers) {
    s.proc.kill("SIGTERM");
    rmSync(s.data, { recursive: true, force: true });
  }
  rmSync(dbs, { recursive: true, force: true });
});

test("duplex serve: sign in through the form, a token shown once, a viewer, sign out", { timeout: ms(900000) }, async (t) => {
  const { url } = await serve({ DUPLEX_ADMIN_EMAIL: ADMIN.email, DUPLEX_ADMIN_PASSWORD: ADMIN.password });
  let page;
  const tab = await newTab((p) => (page = p));
  const { context } = tab;
  let token = "";

  await step(t, tab, "no automatic sign-in outside the demo; a wrong password is refused", async () => {
    const me = await fetch(url + "/api/me");
    assert.equal(me.status, 401);
    const body = await me.json();
    assert.equal(body.code, "unauthenticated");
    assert.equal(body.auto_login, false);
    assert.equal((await fetch(url + "/api/auth/auto", { method: "POST" })).status, 404);
    await signIn(page, url, ADMIN.email, "not the password");
    await page.getByText("Wrong email or password.").waitFor();
    assert.equal(await page.locator('[data-testid="auto-notice"]').count(), 0);
    await screenshot(page, "auth-1-sign-in");
  });

  await step(t, tab, "signs in through the form and lands where it was asked to go", async () => {
    await page.goto(url + "/#/systems");
    await page.locator('[data-testid="sign-in"] input[name="email"]').fill(ADMIN.email);
    await page.fill('[data-testid="sign-in"] input[name="password"]', ADMIN.password);
    await page.click('[data-testid="sign-in"] button[type="submit"]');
    await page.locator("h1", { hasText: "Systems" }).waitFor();
    assert.match(page.url(), /#\/systems$/);
    const cookies = await context.cookies(url);
    assert.ok(cookies.some((c) => c.httpOnly), "no HttpOnly session cookie: " + JSON.stringify(cookies.map((c) => c.name)));
    await page.click('[data-testid="user-menu"] summary');
    const menu = await page.locator('[data-testid="user-menu"] .menu').innerText();
    assert.ok(menu.includes(ADMIN.email), menu);
    assert.match(menu, /org admin/);
    await page.click('[data-testid="user-menu"] summary');
  });

  await step(t, tab, "the session cookie alone cannot change anything: the app sends the CSRF token", async () => {
    const r = await context.request.post(url + "/api/me/tokens", { data: { name: "forged" } });
    assert.equal(r.status(), 403);
    assert.equal((await r.json()).code, "csrf_failed");
  });

  await step(t, tab, "a personal API token is shown once, works, and is listed by its prefix only", async () => {
    await page.click('nav a[href="#/tokens"]');
    await page.fill('input[name="token-name"]', "browser-ci");
    await page.fill('input[name="expires"]', "30");
    await page.click('[data-testid="new-token-form"] button[type="submit"]');
    const box = page.locator('[data-testid="new-token"]');
    await box.waitFor();
    assert.match(await box.innerText(), /shown only this once/);
    token = await box.locator('input[aria-label="new token"]').inputValue();
    assert.match(token, /^dpx_/);
    const row = page.locator('[data-testid="tokens"] tr[data-token="browser-ci"]');
    await row.waitFor();
    assert.ok(!(await row.innerText()).includes(token), "the whole token is in the list");
    await screenshot(page, "auth-2-token");

    const me = await (await fetch(url + "/api/me", { headers: { Authorization: "Bearer " + token } })).json();
    assert.equal(me.via, "token");
    assert.equal(me.user.email, ADMIN.email);

    await page.click('[data-testid="new-token"] button:text("I have copied it")');
    await page.reload();
    await row.waitFor();
    assert.equal(await page.locator('[data-testid="new-token"]').count(), 0);
    assert.ok(!(await page.content()).includes(token), "the token is shown again after a reload");
  });

  let viewerTeam;
  await step(t, tab, "team page: a new team, a new user added by email as viewer", async () => {
    await page.click('nav a[href="#/team"]');
    await page.fill('input[name="team-name"]', "finance");
    // "Create team" looks like a button: its own width, not the form's.
    const create = await page.locator('button:text("Create team")').boundingBox();
    const input = await page.locator('input[name="team-name"]').boundingBox();
    assert.ok(create.width < 200 && create.width < input.width, `Create team is ${create.width}px wide`);
    await screenshot(page, "auth-2b-create-team");
    await page.click('button:text("Create team")');
    await page.waitForURL(/#\/team\/\d+$/);
    viewerTeam = Number(/team\/(\d+)/.exec(page.url())[1]);
    await page.click('button:text("New user…")');
    await page.fill('input[name="user-email"]', "vera@example.com");
    await page.fill('input[name="user-name"]', "Vera Viewer");
    await page.fill('input[name="user-password"]', "vera's long password");
    await page.click('[data-testid="new-user"] button[type="submit"]');
    await page.getByText("User vera@example.com created").waitFor();
    await page.selectOption('select[name="member-role"]', "viewer");
    await page.click('[data-testid="add-member"] button[type="submit"]');
    const row = page.locator('[data-testid="members"] tr[data-member="vera@example.com"]');
    await row.waitFor();
    assert.equal(await row.locator("select").inputValue(), "viewer");
    await screenshot(page, "auth-3-team");
  });

  await step(t, tab, "the admin creates a system in the viewer's team with the team picker", async () => {
    await page.click('nav a[href="#/systems"]');
    await page.click('a[href="#/systems/new"]');
    await page.selectOption('[data-testid="team-picker"]', String(viewerTeam));
    await page.fill('[data-testid="system-form"] input[name="name"]', "finance-ledger");
    await page.check('input[name="as-json"]');
    await page.fill('textarea[name="settings"]', JSON.stringify({ driver: "sqlite", dsn: ledger, table: "t", fields: [{ name: "x" }] }));
    await page.click('[data-testid="system-form"] button[type="submit"]');
    await page.waitForURL(/#\/systems\/\d+$/);
    const id = /systems\/(\d+)/.exec(page.url())[1];
    const sys = await (await fetch(url + "/api/systems/" + id, { headers: { Authorization: "Bearer " + token } })).json();
    assert.equal(sys.team_id, viewerTeam);
  });

  await step(t, tab, "a session that ends brings the form over the page, which stays where it was", async () => {
    await page.goto(url + "/#/systems");
    await page.locator('[data-testid="systems"] a', { hasText: "finance-ledger" }).waitFor();
    await context.clearCookies(); // as when the session expires or is deleted
    // Go elsewhere as a link does; not by clicking, since a background refresh may meet the
    // ended session first and put the form over the page before the click (seen under load).
    await page.evaluate(() => (location.hash = "#/connections"));
    const form = page.locator('.overlay [data-testid="sign-in"]');
    await form.waitFor();
    assert.match(await form.innerText(), /session has ended/);
    assert.equal(await form.locator('input[name="email"]').inputValue(), ADMIN.email);
    await form.locator('input[name="password"]').fill(ADMIN.password);
    await form.locator('button[type="submit"]').click();
    await form.waitFor({ state: "detached" });
    assert.match(page.url(), /#\/connections$/);
    await page.locator("h1", { hasText: "Connections" }).waitFor();
  });

  await step(t, tab, "signs out: the form is back and the old session is gone", async () => {
    await page.click('[data-testid="user-menu"] summary');
    await page.click('[data-testid="sign-out"]');
    await page.locator('[data-testid="sign-in"]').waitFor();
    const r = await context.request.get(url + "/api/me");
    assert.equal(r.status(), 401);
  });

  await step(t, tab, "a viewer sees the system with its buttons disabled and the reason", async () => {
    await page.fill('[data-testid="sign-in"] input[name="email"]', "vera@example.com");
    await page.fill('[data-testid="sign-in"] input[name="password"]', "vera's long password");
    await page.click('[data-testid="sign-in"] button[type="submit"]');
    await page.click('nav a[href="#/systems"]');
    await page.locator('[data-testid="systems"] a', { hasText: "finance-ledger" }).click();
    const test = page.locator('[data-testid="test-system"]');
    await test.waitFor();
    assert.equal(await test.isDisabled(), true);
    assert.match(await test.getAttribute("title"), /^viewers cannot/);
    assert.equal(await page.locator('[data-testid="system-form"] button[type="submit"]').isDisabled(), true);
    await screenshot(page, "auth-4-viewer");
    // The server refuses it anyway, and the app says so without signing out.
    const id = /systems\/(\d+)/.exec(page.url())[1];
    const me = await (await context.request.get(url + "/api/me")).json();
    const r = await context.request.post(url + `/api/systems/${id}/test`, { headers: { "X-CSRF-Token": me.csrf_token } });
    assert.equal(r.status(), 403);
    assert.equal((await r.json()).code, "forbidden");
  });

  await step(t, tab, "a viewer reads a connection's scripts but cannot save, run or activate", async () => {
    // The admin wires a connection in finance through the API, with the token.
    const asAdmin = async (method, path, body) => {
      const r = await fetch(url + path, { method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) assert.fail(`${method} ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    const systems = (await asAdmin("GET", "/api/systems")).filter((x) => x.team_id === viewerTeam);
    const other = await asAdmin("POST", "/api/systems", { name: "finance-books", kind: "sql", team_id: viewerTeam, settings: { driver: "sqlite", dsn: books, table: "t", fields: [{ name: "x" }] } });
    const blank = { trigger: "false", outgoing: "replica.x = entity.x;", incoming: "entity.x = replica.x;" };
    const conn = await asAdmin("POST", "/api/connections", { name: "finance-mirror", team_id: viewerTeam, system_a_id: systems[0].id, system_b_id: other.id, scripts: { a: blank, b: blank } });

    await page.goto(url + `/#/connections/${conn.id}/scripts`);
    await page.locator('[data-script="a.outgoing"] .monaco-editor').waitFor();
    const save = page.locator('[data-testid="save"]');
    assert.equal(await save.getAttribute("title"), "viewers cannot save changes");
    const toggle = page.locator('[data-testid="toggle-active"]');
    assert.equal(await toggle.isDisabled(), true);
    assert.equal(await toggle.getAttribute("title"), "viewers cannot activate or pause connections");
    // The editor is read-only: typing changes nothing.
    await page.locator('[data-script="a.outgoing"] .view-lines').click();
    await page.keyboard.type("oops");
    assert.equal(await page.locator('[data-testid="unsaved"]').innerText(), "All changes saved");
    assert.equal(await page.locator('[data-script="a.outgoing"] [data-testid="diag"]').innerText(), "read-only: the saved version");
    await screenshot(page, "auth-5-viewer-scripts");
    await page.click('a[role="tab"][href$="/test"]');
    const run = page.locator('[data-testid="run-test"]');
    assert.equal(await run.isDisabled(), true);
    assert.equal(await run.getAttribute("title"), "viewers cannot run tests that read remote data");
  });

  await step(t, tab, "a team admin (not an org admin) adds an existing user by email, and cannot create users", async () => {
    const asAdmin = async (method, path, body) => {
      const r = await fetch(url + path, { method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" }, body: JSON.stringify(body) });
      if (!r.ok) assert.fail(`${method} ${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    const tina = await asAdmin("POST", "/api/users", { email: "tina@example.com", name: "Tina Teamadmin", password: "tina's long password" });
    await asAdmin("POST", "/api/users", { email: "olaf@example.com", name: "Olaf", password: "olaf's long password" });
    await asAdmin("PUT", `/api/teams/${viewerTeam}/members/${tina.id}`, { role: "admin" });
    await page.click('[data-testid="user-menu"] summary');
    await page.click('[data-testid="sign-out"]');
    await signIn(page, url, "tina@example.com", "tina's long password");
    await page.locator("h1", { hasText: "Connections" }).waitFor();
    await page.goto(url + `/#/team/${viewerTeam}`);
    await page.locator('[data-testid="add-member"]').waitFor();
    assert.equal(await page.locator('button:text("New user…")').count(), 0);
    await page.fill('input[name="member-email"]', "olaf@example.com");
    await page.selectOption('select[name="member-role"]', "editor");
    await page.click('[data-testid="add-member"] button[type="submit"]');
    const row = page.locator('[data-testid="members"] tr[data-member="olaf@example.com"]');
    await row.waitFor();
    assert.equal(await row.locator("select").inputValue(), "editor");
  });

  await step(t, tab, "the revoked token stops working", async () => {
    // The admin's token revokes itself through the API.
    const list = await (await fetch(url + "/api/me/tokens", { headers: { Authorization: "Bearer " + token } })).json();
    const id = list.find((x) => x.name === "browser-ci").id;
    const del = await fetch(url + "/api/me/tokens/" + id, { method: "DELETE", headers: { Authorization: "Bearer " + token } });
    assert.equal(del.status, 204);
    assert.equal((await fetch(url + "/api/me", { headers: { Authorization: "Bearer " + token } })).status, 401);
  });

  await context.close();
});

test("duplex serve without an admin: the printed setup link creates the first admin", { timeout: ms(600000) }, async (t) => {
  const { printed } = await serve({}, true);
  const link = /(http:\/\/127\.0\.0\.1:\d+\/setup\?token=[^\s"]+)/.exec(printed)[1];
  let page;
  const tab = await newTab((p) => (page = p));

  await step(t, tab, "the setup form on the link signs the new admin in", async () => {
    await page.goto(link);
    const form = page.locator('[data-testid="setup"]');
    await form.waitFor();
    await form.locator('input[name="email"]').fill("first@example.com");
    await form.locator('input[name="name"]').fill("First Admin");
    await form.locator('input[name="password"]').fill("a long first password");
    await form.locator('input[name="again"]').fill("a long first password");
    await form.locator('button[type="submit"]').click();
    await page.locator("h1", { hasText: "Connections" }).waitFor();
    assert.ok(!page.url().includes("token="), "the setup token stays in the address bar: " + page.url());
    await screenshot(page, "auth-7-setup");
  });

  await step(t, tab, "changing the password renews the session; the app picks up its new CSRF token", async () => {
    await page.goto(page.url().replace(/#.*$/, "") + "#/password");
    await page.fill('input[name="current"]', "a long first password");
    await page.fill('input[name="new"]', "a longer second password");
    await page.fill('input[name="again"]', "a longer second password");
    await page.click('[data-testid="password-form"] button[type="submit"]');
    await page.getByText("Password changed").waitFor();
    await page.click('nav a[href="#/tokens"]');
    await page.fill('input[name="token-name"]', "after-password");
    await page.click('[data-testid="new-token-form"] button[type="submit"]');
    await page.locator('[data-testid="new-token"]').waitFor();
  });

  await step(t, tab, "sign-in attempts are throttled and the form says how long to wait", async () => {
    await page.click('[data-testid="user-menu"] summary');
    await page.click('[data-testid="sign-out"]');
    const form = page.locator('[data-testid="sign-in"]');
    await form.waitFor();
    await form.locator('input[name="email"]').fill("first@example.com");
    let limited = false;
    for (let i = 0; i < 8 && !limited; i++) {
      await form.locator('input[name="password"]').fill("wrong " + i);
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith("/api/auth/login")), form.locator('button[type="submit"]').click()]);
      limited = res.status() === 429;
      if (!limited) assert.equal(res.status(), 401);
    }
    await page.locator('[data-testid="rate-limited"]').waitFor();
    assert.ok(limited, "no 429 after 8 wrong passwords");
    assert.match(await page.locator('[data-testid="rate-limited"]').innerText(), /Too many sign-in attempts\. Try again in \d+ (min|s)/);
    assert.equal(await form.locator('button[type="submit"]').isDisabled(), true);
    await screenshot(page, "auth-8-throttled");
  });

  await step(t, tab, "the setup link, used already, says so", async () => {
    await page.goto(link);
    await page.locator('[data-testid="sign-in"] .notice', { hasText: "setup link was used already" }).waitFor();
    await screenshot(page, "auth-9-setup-used");
  });
});

test("no errors in the browser console, nothing fetched from elsewhere", () => {
  assert.deepEqual(consoleErrors, []);
});
