// Browser test of the mapping editor: on the demo's connection the
// engineering → support direction (a template direction that is a plain
// mapping) opens as a mapping; changing its status map shows, through the
// Impact button, the ticket whose status the new map changes (old → new);
// Save stores the mapping, and the next sync of an issue applies it.
//
//   node --test e2e/mapping.test.mjs   (needs bin/duplex built with the app: make build)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, ms, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

let demo, data, url, browser, context, tab, page;
const consoleErrors = [];

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

before(async () => {
  ({ proc: demo, data, url } = await startDemo({ prefix: "duplex-e2e-mapping-", poll: "300ms" }));
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

test("a status map changed in the mapping editor: impact, save, and the next sync uses it", { timeout: ms(400000) }, async (t) => {
  const step = (name, fn) => harnessStep(t, tab, name, fn);
  await step("the escalated ticket's issue is resolved and the ticket solved", async () => {
    await page.goto(url + "/#/connections");
    await page.locator('a[href="#/connections/1"]').first().waitFor({ timeout: ms(20000) }); // signed in
    await until(() => sql("engineering.db", "SELECT COUNT(*) FROM issues WHERE ticket_ref = 'T-1'") === "1", 20000, "the ticket was not escalated in time");
    sql("engineering.db", "UPDATE issues SET state = 'resolved' WHERE ticket_ref = 'T-1'");
    await until(() => sql("support.db", "SELECT status FROM tickets WHERE id = 1") === "solved", 20000, "the resolved issue did not solve the ticket");
  });
  await step("the direction opens as a mapping; the status map's resolved becomes done, closed closed", async () => {
    await page.goto(url + "/#/connections/1/scripts");
    const view = page.locator('[data-mapping="b_to_a"]');
    await view.waitFor({ timeout: ms(30000) });
    assert.equal(await page.locator('[data-testid="view-mapping-b_to_a"]').getAttribute("aria-pressed"), "true");
    assert.equal(await page.locator('[data-testid="view-code-a_to_b"]').getAttribute("aria-pressed"), "true", "the other direction is code");
    // The other direction's Mapping view says why it is code.
    await page.click('[data-testid="view-mapping-a_to_b"]');
    assert.match(await page.locator('[data-testid="mapping-is-code"]').innerText(), /This direction is code: the incoming script was written as code/);
    await page.click('[data-testid="view-code-a_to_b"]');
    const row = view.locator('tr[data-row="status"]');
    assert.equal(await row.locator('input[aria-label="source field"]').inputValue(), "state");
    await row.locator('[data-testid="map-toggle"]').click();
    await view.locator('tr[data-map-key="resolved"] input[aria-label="to"]').fill("done");
    await view.locator('tr[data-map-key="closed"] input[aria-label="to"]').fill("closed");
    // The draft mapping is rendered into the incoming script only: the outgoing one does not change.
    await until(async () => (await page.locator('[data-testid="unsaved"]').innerText()) === "1 unsaved: a.incoming", 15000, "the mapping was not rendered into a draft");
    // The rendered draft is code like any other: the Code view shows it, and back in the Mapping view it is still the mapping's.
    await page.click('[data-testid="view-code-b_to_a"]');
    await page.locator('[data-script="a.incoming"] .monaco-editor').waitFor({ timeout: ms(30000) });
    await page.click('[data-testid="view-mapping-b_to_a"]');
    await view.waitFor();
    assert.equal(await page.locator('[data-testid="mapping-code-drafts"]').count(), 0, "the mapping's own draft taken for a hand edit");
  });
  await step("Impact lists the ticket with its status old → new", async () => {
    await page.click('[data-testid="impact-run"]');
    const panel = page.locator('[data-testid="impact"] [data-direction="b_to_a"]');
    await panel.waitFor({ timeout: ms(20000) });
    assert.match(await panel.locator('[data-testid="impact-totals"]').innerText(), /1 patch differs/);
    const text = await panel.locator("li").first().innerText();
    assert.match(text, /→ 1/, "the target is the ticket");
    assert.match(text, /patch\.status\s+"solved"\s+→\s+"done"/);
    await screenshot(page, "mapping-impact", { at: panel });
  });
  await step("Save stores the mapping as the incoming script's next version", async () => {
    await page.click('[data-testid="save"]');
    await until(async () => (await page.locator('[data-testid="unsaved"]').innerText()) === "All changes saved", 15000, "not saved");
    const r = await context.request.get(url + "/api/connections/1/mapping/b_to_a");
    assert.equal(r.status(), 200);
    const m = (await r.json()).mapping;
    assert.deepEqual([m.rows[0].map.resolved, m.rows[0].map.closed], ["done", "closed"]);
    assert.equal(m.rows[0].map.new, "escalated", "the other values are kept");
    const audit = await (await context.request.get(url + "/api/audit?limit=20")).json();
    assert.ok(audit.some((a) => a.action === "mapping.save"), "no mapping.save audit entry");
    await screenshot(page, "mapping-saved", { at: page.locator('[data-mapping="b_to_a"]') });
  });
  // The engine writes the fields whose result the replica's change changes
  // (the incoming script run on the previous replica and on this one), so
  // the next change is one the new map tells apart: resolved → done before,
  // closed → closed now (the old map made both solved).
  await step("the next sync applies the new map", async () => {
    sql("engineering.db", "UPDATE issues SET state = 'closed' WHERE ticket_ref = 'T-1'");
    await until(() => sql("support.db", "SELECT status FROM tickets WHERE id = 1") === "closed", 20000, "the closed issue did not close the ticket");
  });
  assert.deepEqual(consoleErrors, []);
});
