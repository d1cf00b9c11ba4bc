// Browser test of a test run of unsaved drafts: on the demo's connection an
// edit to the outgoing script, not saved, runs in the Test tab on a real
// ticket (the replica shows the edit, the tab says it tests the unsaved
// change), the saved script stays as it was, and a draft that does not
// compile is refused with its position.
//
//   node --test e2e/testrun-draft.test.mjs   (needs bin/duplex built with the app: make build)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, ms, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

let demo, data, url, browser, context, tab, page;
const consoleErrors = [];

before(async () => {
  ({ proc: demo, data, url } = await startDemo({ prefix: "duplex-e2e-testrun-draft-", poll: "300ms" }));
  browser = await launchBrowser();
  context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  tab = await new Tab(context, { errors: consoleErrors, expected: /status of 4(22|01)/, onPage: (p) => (page = p) }).open();
  await refuseOthers(context, consoleErrors);
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

/** sql runs a statement on a demo database, as a person with sqlite3 would. */
function sql(db, statement) {
  return execFileSync("sqlite3", [join(data, db), statement], { encoding: "utf8" }).trim();
}

/** until polls check every 300 ms until it answers true, failing with what after limit ms. */
async function until(check, limit, what) {
  for (const deadline = Date.now() + ms(limit); ; ) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, what);
    await new Promise((ok) => setTimeout(ok, 300));
  }
}

async function savedOutgoing() {
  const r = await context.request.get(url + "/api/connections/1");
  assert.equal(r.status(), 200);
  return (await r.json()).scripts.a.outgoing;
}

/** appendLine adds a line at the end of a script's editor, without saving. */
async function appendLine(script, text) {
  const editor = page.locator(`[data-script="${script}"] .monaco-editor`);
  await editor.waitFor({ timeout: ms(30000) });
  await editor.locator(".view-lines").click();
  await page.keyboard.press("ControlOrMeta+End");
  await page.keyboard.press("Enter");
  await page.keyboard.type(text);
}

test("an unsaved outgoing script runs in the test run; the saved one is untouched", { timeout: ms(300000) }, async (t) => {
  const step = (name, fn) => harnessStep(t, tab, name, fn);
  let before;
  await step("the Test tab tests the saved versions while nothing is edited", async () => {
    await page.goto(url + "/#/connections/1/test");
    await page.locator('[data-testid="test-run-what"]').waitFor({ timeout: ms(20000) });
    assert.match(await page.locator('[data-testid="test-run-what"]').innerText(), /Testing the saved versions/);
    before = await savedOutgoing();
  });
  await step("edit the outgoing script without saving", async () => {
    await page.goto(url + "/#/connections/1/scripts");
    await appendLine("a.outgoing", 'replica.title = "DRAFT " + entity.subject;');
    await page.locator('[data-testid="unsaved"]', { hasText: "1 unsaved: a.outgoing" }).waitFor({ timeout: ms(15000) });
  });
  await step("the test run says it tests the unsaved change, and the replica shows it", async () => {
    await page.click('a[role="tab"][href$="/test"]');
    const what = page.locator('[data-testid="test-run-what"]');
    assert.match(await what.innerText(), /Testing your unsaved changes to .+'s outgoing script/);
    await page.fill('input[name="entity"]', "1");
    await page.click('[data-testid="run-test"]');
    const res = page.locator('[data-testid="test-result"]');
    await res.waitFor({ timeout: ms(20000) });
    const text = await res.innerText();
    assert.match(text, /"title": "DRAFT Checkout fails with a 500"/);
    assert.match(await res.locator('[data-testid="ran-drafts"]').innerText(), /ran unsaved: outgoing/);
    await screenshot(page, "testrun-draft", { at: page.locator(".test-run") });
  });
  await step("the saved script is unchanged and the draft is still unsaved", async () => {
    const now = await savedOutgoing();
    assert.equal(now.version, before.version);
    assert.equal(now.source, before.source);
    assert.doesNotMatch(now.source, /DRAFT/);
    await page.click('a[role="tab"][href$="/scripts"]');
    await page.locator('[data-testid="unsaved"]', { hasText: "1 unsaved: a.outgoing" }).waitFor({ timeout: ms(15000) });
  });
  await step("a draft that does not compile is refused with its line", async () => {
    await appendLine("a.outgoing", "replica.title = (;");
    await page.click('a[role="tab"][href$="/test"]');
    await page.fill('input[name="entity"]', "1");
    await page.click('[data-testid="run-test"]');
    const err = page.locator('[data-testid="draft-invalid"]');
    await err.waitFor({ timeout: ms(20000) });
    assert.match(await err.innerText(), /Your unsaved a\.outgoing\.js \(draft\) does not compile at line \d+, column \d+: SyntaxError/);
    assert.equal(await page.locator('[data-testid="test-result"]').count(), 0);
  });
  assert.deepEqual(consoleErrors, []);
});

test("an unsaved status map from the Mapping view runs in the test run of the other side", { timeout: ms(300000) }, async (t) => {
  const step = (name, fn) => harnessStep(t, tab, name, fn);
  let issue, state;
  await step("the demo's ticket T-1 is escalated to an issue", async () => {
    await until(() => sql("engineering.db", "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'") === "1", 20000, "the ticket was not escalated in time");
    issue = sql("engineering.db", "SELECT id FROM issues WHERE ticket_ref = 'T-1'");
    state = sql("engineering.db", `SELECT state FROM issues WHERE id = ${issue}`);
  });
  await step("change the status map's value for the issue's state, without saving", async () => {
    await page.goto(url + "/#/connections/1/scripts");
    const view = page.locator('[data-mapping="b_to_a"]');
    await view.waitFor({ timeout: ms(30000) });
    await view.locator('tr[data-row="status"] [data-testid="map-toggle"]').click();
    await view.locator(`tr[data-map-key="${state}"] input[aria-label="to"]`).fill("drafted");
    await page.locator('[data-testid="unsaved"]', { hasText: "a.incoming" }).waitFor({ timeout: ms(15000) });
  });
  await step("testing side B runs the mapping's draft: the ticket's status would be the new value", async () => {
    await page.click('a[role="tab"][href$="/test"]');
    await page.selectOption('select[name="side"]', "b");
    assert.match(await page.locator('[data-testid="test-run-what"]').innerText(), /Testing your unsaved changes to .+'s incoming script/);
    await page.fill('input[name="entity"]', issue);
    await page.click('[data-testid="run-test"]');
    const res = page.locator('[data-testid="test-result"]');
    await res.waitFor({ timeout: ms(20000) });
    assert.match(await res.innerText(), /"status": "drafted"/);
    assert.match(await res.locator('[data-testid="ran-drafts"]').innerText(), /ran unsaved: incoming/);
    const r = await context.request.get(url + "/api/connections/1/mapping/b_to_a");
    assert.notEqual((await r.json()).mapping.rows[0].map[state], "drafted", "the draft was saved");
  });
  assert.deepEqual(consoleErrors, []);
});
