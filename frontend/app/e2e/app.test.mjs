// Browser tests: the real binary runs `duplex demo` on a free loopback port,
// Debian's Chromium (driven by playwright-core) uses the app like a person.
// The demo signs the browser in automatically (loopback only); auth.test.mjs
// covers `duplex serve` with the sign-in form.
// Screenshots of each main view go to test-output/ (not committed).
//
//   npm run test:browser            (needs bin/duplex built with the app: make build)
//   DUPLEX_BIN=… CHROMIUM=… TEST_OUTPUT=… to override the defaults.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, ms, progress, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

let demo, data, url, browser, context, tab, page;
const consoleErrors = [];

/** sql runs a statement on a demo database, as a person with sqlite3 would. */
function sql(db, statement) {
  return execFileSync("sqlite3", [join(data, db), statement], { encoding: "utf8" }).trim();
}

/** shot keeps a screenshot as evidence (the viewport, scrolled to at when given); it never fails a step. */
async function shot(name, at) {
  await screenshot(page, name, { at });
}

/** api reads the API with the browser's session cookie. */
async function api(path) {
  const r = await context.request.get(url + path);
  assert.equal(r.status(), 200, path);
  return r.json();
}

/** Replace a Monaco editor's text by typing it, key by key (auto-closed quotes are typed over). */
async function typeInto(script, text) {
  const editor = page.locator(`[data-script="${script}"] .monaco-editor`);
  await editor.locator(".view-lines").click();
  await page.keyboard.press("ControlOrMeta+A");
  await page.keyboard.press("Delete");
  await page.keyboard.type(text);
}

/** step runs one part of the story (harness.mjs): bounded in time, and a failure leaves a new page for the next step. */
function step(t, name, fn) {
  return harnessStep(t, tab, name, fn);
}

before(async () => {
  ({ proc: demo, data, url } = await startDemo({ prefix: "duplex-e2e-", poll: "300ms" }));
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  // A 422 is the server refusing a draft that does not compile: expected while typing.
  // A 401 is GET /api/me before the demo's automatic sign-in: expected once (and again on a new page).
  tab = await new Tab(context, { errors: consoleErrors, expected: /status of 4(22|01)/, onPage: (p) => (page = p) }).open();
  await refuseOthers(context, consoleErrors);
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

// Each step has its own limit (60 s); this one only proves the story ended.
test("a connection from the escalation template, edited, tested, activated, synced and restored", { timeout: ms(900000) }, async (t) => {
  let connID;

  await step(t, "the demo signs in automatically on loopback and says so; the app opens on the connection list", async () => {
    const anonymous = await fetch(url + "/api/me");
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).auto_login, true);
    const start = Date.now();
    await page.goto(url);
    const row = page.locator('[data-connection="support-escalation"]');
    await row.waitFor();
    assert.match(await row.innerText(), /active/);
    t.diagnostic(`first view in ${Date.now() - start} ms`);
    assert.equal(await page.locator('[data-testid="auto-notice"]').innerText(), "demo: signed in automatically on loopback");
    const me = await api("/api/me");
    assert.equal(me.via, "session");
    await page.click('[data-testid="user-menu"] summary');
    const menu = await page.locator('[data-testid="user-menu"] .menu').innerText();
    assert.ok(menu.includes(me.user.email), menu);
    for (const team of me.teams) assert.ok(menu.includes(team.name) && menu.includes(team.role), menu);
    await page.click('[data-testid="user-menu"] summary');
    // Monaco is not part of the first load.
    const scripts = await page.evaluate(() => performance.getEntriesByType("resource").map((e) => e.name));
    assert.ok(!scripts.some((s) => /monaco|ts\.worker/.test(s)), "editor loaded on the list view: " + scripts.join(", "));
    await shot("1-connections");
  });

  await step(t, "systems: test connection reports the fields", async () => {
    await page.click('nav a[href="#/systems"]');
    await page.locator('[data-testid="systems"] a').first().click();
    await page.click('[data-testid="test-system"]');
    const res = page.locator('[data-testid="system-test-result"]');
    await res.waitFor();
    assert.match(await res.innerText(), /Connected .* subject \(string\)/s);
    await shot("2-systems");
  });

  await step(t, "systems: add one with a secret; the secret never comes back", async () => {
    await page.click('a[href="#/systems/new"]');
    // The previous step left system 1's form open: filling before the new
    // form replaced it typed the name into the old one (seen when the demo's
    // first sync kept the server busy at that moment).
    await page.locator('[data-testid="system-form"] h2', { hasText: "New system" }).waitFor();
    await page.fill('[data-testid="system-form"] input[name="name"]', "browser-desk");
    // The expert's way: the settings as JSON, a secret by name (the sql
    // kind takes its DSN as the secret "dsn").
    await page.check('input[name="as-json"]');
    await page.fill('textarea[name="settings"]', JSON.stringify({ driver: "sqlite", table: "tickets", fields: [{ name: "subject" }] }));
    await page.fill('input[aria-label="secret name"]', "dsn");
    await page.fill('input[aria-label="secret value"]', join(data, "support.db") + "?hunter2=1");
    // "Add secret" looks like a button: its own width, not the column's (it read as one more input).
    const add = await page.getByRole("button", { name: "+ Add secret" }).boundingBox();
    const field = await page.locator('input[aria-label="secret name"]').boundingBox();
    assert.ok(add.width < 200 && add.width < field.width, `Add secret is ${add.width}px wide`);
    await shot("2b-system-form");
    await page.click('[data-testid="system-form"] button[type="submit"]');
    await page.waitForURL(/#\/systems\/\d+$/);
    const id = /systems\/(\d+)/.exec(page.url())[1];
    await page.locator('[data-testid="system-form"] .tag', { hasText: "dsn" }).waitFor();
    assert.equal(await page.locator('input[type="password"]').count(), 0, "a secret field is shown for a saved system");
    assert.ok(!(await page.content()).includes("hunter2"), "the secret is in the page");
    const sys = await api(`/api/systems/${id}`);
    assert.deepEqual(sys.secret_keys, ["dsn"]);
    assert.ok(!JSON.stringify(sys).includes("hunter2"));
    await page.click('[data-testid="test-system"]');
    await page.locator('[data-testid="system-test-result"]', { hasText: "Connected" }).waitFor();
    // Editing keeps the secret unless it is replaced.
    await page.fill('input[name="poll"]', "5000");
    await page.click('[data-testid="system-form"] button[type="submit"]');
    await page.getByText("System saved").waitFor();
    const after = await api(`/api/systems/${id}`);
    assert.equal(after.poll_interval_ms, 5000);
    assert.deepEqual(after.secret_keys, ["dsn"]);
  });

  await step(t, "systems: the form lists every kind and makes a Redmine system from its spec", async () => {
    const kinds = (await api("/api/connector-kinds")).map((k) => k.kind);
    await page.click('a[href="#/systems/new"]');
    const form = page.locator('[data-testid="system-form"]');
    const offered = await form.locator('select[name="kind"] option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual([...offered].sort(), [...kinds].sort(), "the kind picker offers every registered kind");
    assert.ok(kinds.includes("redmine") && kinds.includes("jira"));
    await form.locator('input[name="name"]').fill("browser-redmine");
    await form.locator('select[name="kind"]').selectOption("redmine");
    await form.locator('input[name="setting-url"]').fill("http://127.0.0.1:3100");
    assert.equal(await form.locator('input[name="setting-timeout_ms"]').getAttribute("placeholder"), "30000", "a default is shown");
    assert.equal(await form.locator('input[name="secret-api_key"]').getAttribute("type"), "password");
    await form.locator('input[name="secret-api_key"]').fill("browser-redmine-key");
    await shot("2c-system-form-redmine");
    // The required project is missing: the server refuses, naming it.
    await form.locator('button[type="submit"]').click();
    await form.getByText(/project: is required/).waitFor();
    await form.locator('input[name="setting-project"]').fill("browser-form");
    await form.locator('button[type="submit"]').click();
    await page.waitForURL(/#\/systems\/\d+$/);
    const id = /systems\/(\d+)/.exec(page.url())[1];
    const sys = await api(`/api/systems/${id}`);
    assert.equal(sys.kind, "redmine");
    assert.deepEqual(sys.settings, { url: "http://127.0.0.1:3100", project: "browser-form" });
    assert.deepEqual(sys.secret_keys, ["api_key"]);
  });

  await step(t, "create from the template gallery", async () => {
    await page.click('nav a[href="#/connections"]');
    await page.click('a[href="#/connections/new"]');
    await page.locator('[data-template="support-escalation"]').waitFor();
    await shot("3-templates");
    // A template whose sides fit rt and redmine offers only the Redmine
    // system on side b and says side a has none yet.
    await page.click('[data-template="rt-redmine-escalation"]');
    await page.locator('[data-no-fit="a"]', { hasText: "No Request Tracker system yet" }).waitFor();
    await page.locator('select[name="Side B"] option', { hasText: "browser-redmine (redmine)" }).waitFor({ state: "attached" });
    assert.deepEqual(await page.locator('select[name="Side B"] option').allInnerTexts(), ["browser-redmine (redmine)"]);
    assert.equal(await page.locator('form button[type="submit"]').isDisabled(), true);
    await shot("3b-template-no-fitting-system");
    await page.click('form a.btn[href="#/connections/new"]');
    await page.click('[data-template="support-escalation"]');
    // Both sides of support-escalation fit sql: the Redmine system is not offered.
    // Wait for the pickers to follow the new template (under load the previous
    // template's options can still be on screen for a moment).
    await page.waitForFunction(() =>
      ["Side A", "Side B"].every((side) => {
        const texts = [...document.querySelectorAll(`select[name="${side}"] option`)].map((o) => o.textContent || "");
        return texts.length >= 2 && texts.every((t) => t.endsWith("(sql)"));
      }),
    );
    for (const side of ["Side A", "Side B"]) {
      const offered = await page.locator(`select[name="${side}"] option`).allInnerTexts();
      assert.ok(offered.length >= 2 && offered.every((o) => o.endsWith("(sql)")), `${side}: ${offered}`);
    }
    await page.fill('input[name="name"]', "browser-escalation");
    await page.click('button[type="submit"]');
    await page.waitForURL(/#\/connections\/\d+\/scripts/);
    connID = Number(/connections\/(\d+)/.exec(page.url())[1]);
    const conn = await api(`/api/connections/${connID}`);
    assert.equal(conn.template, "support-escalation");
    assert.equal(conn.active, false);
  });

  await step(t, "a trigger with a syntax error is underlined where the server says, then fixed", async () => {
    await page.locator('[data-script="a.trigger"] .monaco-editor').waitFor();
    await typeInto("a.trigger", '"browser" in labels &&');
    const pane = page.locator('[data-script="a.trigger"]');
    await pane.locator(".squiggly-error").waitFor();
    // Wait for the diagnosis of the whole text: on a loaded machine the
    // server's answer for a half-typed draft ('"browser" i' → unexpected
    // token) can be on screen first; the app replaces it when the last
    // keystroke's answer arrives.
    await pane.locator('[data-testid="diag"]', { hasText: /EOF/ }).waitFor();
    assert.match(await pane.locator('[data-testid="diag"]').innerText(), /✗ 1:2[0-3] .*EOF/);
    await shot("4-editor-error");
    await typeInto("a.trigger", '"browser" in labels');
    await pane.getByText("✓ compiles").waitFor();
    assert.equal(await pane.locator(".squiggly-error").count(), 0);
    // The preview counts the demo's three tickets: none is labelled browser yet.
    await pane.locator('[data-testid="preview"]', { hasText: "matches 0 of 3" }).waitFor();
    // Zero matches does not mean nothing syncs: the pane says what the trigger decides.
    assert.match(await pane.locator('[data-testid="trigger-note"]').innerText(), /Linked items always sync/);
    await shot("4b-trigger-note", pane);
  });

  await step(t, "completion offers the script API's helpers", async () => {
    const editor = page.locator('[data-script="a.outgoing"] .monaco-editor');
    await editor.locator(".view-lines").click();
    await page.keyboard.press("ControlOrMeta+End");
    await page.keyboard.press("Enter");
    await page.keyboard.type("mergeCom");
    await page.keyboard.press("Control+Space");
    const item = page.locator(".suggest-widget .monaco-list-row", { hasText: "mergeComments" });
    await item.first().waitFor();
    await page.keyboard.press("Escape");
    await page.keyboard.press("ControlOrMeta+Backspace"); // the half-typed word
    await page.keyboard.type('log("sent by the browser test");');
  });

  await step(t, "unsaved changes: leaving asks first; Ctrl+S saves both scripts", async () => {
    assert.match(await page.locator('[data-testid="unsaved"]').innerText(), /2 unsaved: a\.outgoing, a\.trigger/);
    let asked = "";
    page.once("dialog", (d) => ((asked = d.message()), d.dismiss()));
    await page.click('nav a[href="#/connections"]');
    await page.waitForTimeout(200);
    assert.match(asked, /unsaved/);
    assert.match(page.url(), /\/scripts$/, "navigation was not cancelled");
    await page.keyboard.press("ControlOrMeta+S");
    await page.locator('[data-testid="unsaved"]', { hasText: "All changes saved" }).waitFor();
    const conn = await api(`/api/connections/${connID}`);
    assert.equal(conn.scripts.a.trigger.source, '"browser" in labels');
    assert.equal(conn.scripts.a.trigger.version, 2);
    assert.match(conn.scripts.a.outgoing.source, /sent by the browser test/);
    await shot("5-editor");
  });

  await step(t, "validation rules: a compile error names the rule and position; a valid rule saves as a version", async () => {
    const panel = page.locator('[data-rules="b"]');
    await page.click('[data-testid="add-rule-b"]');
    const row = panel.locator('tr[data-rule="1"]');
    await row.locator('input[aria-label="field"]').fill("title");
    await row.locator('select[aria-label="rule"]').selectOption("expr");
    await row.locator('input[aria-label="expr"]').fill("len(title) <");
    await panel.locator('[data-testid="rules-status"]', { hasText: "rule 1 at 1:" }).waitFor();
    assert.ok(await panel.locator('[data-testid="save-rules-b"]').isDisabled(), "saving a rule that does not compile");
    await row.locator('input[aria-label="expr"]').fill("len(title) > 0");
    await row.locator('input[aria-label="message"]').fill("needs a title");
    await panel.locator('[data-testid="rules-status"]', { hasText: "compiles" }).waitFor();
    await page.click('[data-testid="save-rules-b"]');
    await panel.locator(".pane-head", { hasText: "v1" }).waitFor();
    const rules = await api(`/api/connections/${connID}/rules/b`);
    assert.equal(rules.version, 1);
    assert.deepEqual(rules.rules, [{ field: "title", kind: "expr", expr: "len(title) > 0", message: "needs a title" }]);
  });

  await step(t, "a test run shows trigger result, replica, patch and log", async () => {
    await page.click('a[role="tab"][href$="/test"]');
    await page.fill('input[name="entity"]', "2");
    await page.click('[data-testid="run-test"]');
    const res = page.locator('[data-testid="test-result"]');
    await res.waitFor();
    const text = await res.innerText();
    assert.match(text, /trigger did not match/);
    assert.match(text, /"title": "How do I reset my password\?"/);
    // One sentence says what would happen (here: nothing, the trigger does not match ticket 2).
    assert.match(await res.locator('[data-testid="outcome"]').innerText(), /^Nothing is sent: the trigger did not match and the item is not linked to .+ yet\.$/);
    assert.match(text, /sent by the browser test/);
    assert.match(text, /1 rule passes/);
    assert.match(text, /✓ expr · title = "How do I reset my password\?" — needs a title/);
    await shot("6-test-run", res);
  });

  await step(t, "activate, escalate a ticket, see it in the activity view", async () => {
    await page.click('[data-testid="toggle-active"]');
    await page.locator("h1 .pill", { hasText: "active" }).waitFor();
    sql("support.db", "UPDATE tickets SET labels = 'account,browser' WHERE id = 2");
    await page.click('a[role="tab"][href$="/activity"]');
    const item = page.locator('[data-testid="activity"] li.st-done', { hasText: "#2" });
    await item.waitFor({ timeout: ms(20000) });
    const text = await item.innerText();
    const issue = sql("engineering.db", "SELECT id FROM issues WHERE ticket_ref = 'T-2'");
    assert.ok(issue, "no engineering issue for T-2");
    assert.match(text, new RegExp(`#2 → .*#${issue}\\b`), text);
    await shot("7-activity", item);
  });

  await step(t, "versions: diff two versions and restore the older one", async () => {
    await page.click('a[role="tab"][href$="/versions"]');
    await page.selectOption('select[name="script"]', "a.outgoing");
    const diff = page.locator('[data-testid="diff"]');
    await diff.getByText("v1 → v2").waitFor();
    assert.match(await diff.locator(".dl.add").innerText(), /sent by the browser test/);
    await shot("8-versions");
    await page.click('[data-testid="restore-1"]');
    await page.locator('[data-testid="versions"] tr[data-version="3"]', { hasText: "current" }).waitFor();
    const conn = await api(`/api/connections/${connID}`);
    const v1 = (await api(`/api/connections/${connID}/scripts/a/outgoing/versions`)).find((v) => v.version === 1);
    assert.equal(conn.scripts.a.outgoing.version, 3);
    assert.equal(conn.scripts.a.outgoing.source, v1.source);
  });

  await step(t, "a failing script: the event waits in errors, retry fails again, skip with a reason", async () => {
    await page.click('a[role="tab"][href$="/scripts"]');
    const editor = page.locator('[data-script="a.outgoing"] .monaco-editor');
    await editor.waitFor();
    await editor.locator(".view-lines").click();
    await page.keyboard.press("ControlOrMeta+End");
    await page.keyboard.press("Enter");
    await page.keyboard.type('if (entity.key == "T-3") fail("T-3 is not ready");');
    await page.locator('[data-script="a.outgoing"]').getByText("✓ compiles").waitFor();
    await page.keyboard.press("ControlOrMeta+S");
    await page.locator('[data-testid="unsaved"]', { hasText: "All changes saved" }).waitFor();
    sql("support.db", "UPDATE tickets SET labels = 'export,browser' WHERE id = 3");

    await page.click('a[role="tab"][href$="/queue"]');
    const card = page.locator(".event.st-failed", { hasText: "T-3 is not ready" });
    await card.waitFor({ timeout: ms(20000) });
    await page.locator('a[role="tab"][href$="/queue"] .badge', { hasText: "1" }).waitFor();
    await shot("9-errors", card);
    const id = await card.getAttribute("data-event");
    await card.getByRole("button", { name: "Retry" }).click();
    // The script still fails: the event comes back failed, with one more attempt in all
    // (the retry starts the engine's count over; the card shows both).
    await page.waitForFunction(async (id) => {
      const ev = await (await fetch(`/api/events/${id}`)).json();
      return ev.status === "failed" && ev.total_attempts >= 2;
    }, id, { timeout: ms(20000) });
    const again = page.locator(`.event[data-event="${id}"]`);
    await again.locator('[data-testid="attempts"]', { hasText: /^\d+ attempts \(\d+ since the last retry\)$/ }).waitFor();
    await shot("9b-errors-after-retry", again);
    await page.locator(`.event[data-event="${id}"]`).getByRole("button", { name: "Skip…" }).click();
    await page.fill('input[placeholder^="Why skip"]', "T-3 waits for the export fix");
    await page.getByRole("button", { name: "Skip event" }).click();
    await page.getByText("No failed events").waitFor();
    await page.click('.seg button:text("skipped")');
    await page.locator(`.event[data-event="${id}"]`).waitFor();
    const ev = await api(`/api/events/${id}`);
    assert.equal(ev.status, "skipped");
    const audit = await api(`/api/audit?connection_id=${connID}`);
    assert.ok(audit.some((e) => e.action === "event.skip" && e.detail.includes("T-3 waits for the export fix")), "skip reason not in the audit log");
  });

  await step(t, "conflicts and settings views", async () => {
    await page.click('a[role="tab"][href$="/conflicts"]');
    await page.getByText("No conflicts").waitFor();
    assert.match(await page.locator('[data-testid="policy-words"]').innerText(), /\(side A\) wins/);
    await shot("10-conflicts");
    await page.click('a[role="tab"][href$="/settings"]');
    assert.match(await page.locator('[data-testid="policy-now"]').innerText(), /^Now: .+ \(side A\) wins\.$/);
    await page.selectOption('select[name="default"]', "manual");
    // A per-field override is a row (field, rule), not JSON.
    await page.getByRole("button", { name: "Add a field" }).click();
    const row = page.locator('[data-testid="policy-override"]');
    await row.locator('input[aria-label="field"]').fill("priority");
    await row.locator("select").selectOption("b");
    await page.getByRole("button", { name: "Save policy" }).click();
    await page.getByText("Conflict policy saved").waitFor();
    const conn = await api(`/api/connections/${connID}`);
    assert.deepEqual(conn.conflict_policy, // a JSON value since API version 2
       { default: "manual", fields: { priority: "b" } });
    await page.locator('[data-testid="policy-now"]', { hasText: /^Now: you decide \(conflicts wait here\); for priority, .+ \(side B\) wins\.$/ }).waitFor();
    await shot("10b-settings");
  });

  await step(t, "a conflict (manual policy): both values and the base shown, an edited value resolves it", async () => {
    // Support sets the ticket's status by hand, then engineering resolves the issue, whose
    // state maps onto that same status: both changed it since the last sync.
    const before = sql("support.db", "SELECT status FROM tickets WHERE id = 2");
    sql("support.db", "UPDATE tickets SET status = 'pending' WHERE id = 2");
    await page.waitForTimeout(800); // the support change is read first (it sends nothing new)
    sql("engineering.db", "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-2'");
    await page.click('a[role="tab"][href$="/conflicts"]');
    const card = page.locator(".event.st-conflict");
    await card.waitFor({ timeout: ms(20000) });
    const row = card.locator("tbody tr", { hasText: "status" });
    const cells = await row.locator("td").allInnerTexts();
    assert.deepEqual(cells.slice(0, 4), ["status", JSON.stringify(before), '"pending"', '"solved"']);
    await shot("11-conflict", card);
    await row.getByRole("button", { name: "edit" }).click();
    // Text as typed, no JSON quotes needed.
    await row.locator("input").fill("solved-by-engineering");
    await card.getByRole("button", { name: "Resolve" }).click();
    await page.getByText("No conflicts").waitFor();
    const deadline = Date.now() + ms(15000);
    let status = "";
    while (Date.now() < deadline && status !== "solved-by-engineering") {
      status = sql("support.db", "SELECT status FROM tickets WHERE id = 2");
      await page.waitForTimeout(200);
    }
    assert.equal(status, "solved-by-engineering");
    // The way back (engineering → support) sends only the status; its row is named all the same.
    await page.click('a[role="tab"][href$="/activity"]');
    const events = await api(`/api/events?connection_id=${connID}&limit=100`);
    const way = events.find((e) => e.direction === "b_to_a" && e.status === "done");
    assert.ok(way, "no engineering → support event: " + JSON.stringify(events.map((e) => [e.id, e.direction, e.status])));
    const back = page.locator(`[data-testid="activity"] li[data-event="${way.id}"]`);
    await back.waitFor();
    assert.match(await back.innerText(), /How do I reset my password\?/);
    const audit = await page.locator(".audit").innerText();
    assert.match(audit, /skipped an event/);
    // The audit log reads as words, the policy change too (not its JSON).
    assert.match(audit, /changed the conflict policy[\s\S]*now: you decide \(conflicts wait here\); for priority, .+ \(side B\) wins/);
    assert.match(audit, /resolved a conflict\s.*\s+event \d+: status: "solved-by-engineering" \(edited\)/);
    assert.doesNotMatch(audit, /\{"/, "JSON in the audit log");
    await shot("12-activity-both-ways");
  });

  await t.test("no errors in the browser console, nothing fetched from elsewhere", () => {
    progress("console");
    assert.deepEqual(consoleErrors, []);
  });
});
