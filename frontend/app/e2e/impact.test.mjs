// Browser test of the impact preview: on the demo's connection, a draft of
// the engineering side's incoming script, the Impact button beside Save, and
// the escalated ticket's issue listed with its title old → new. Nothing is
// saved.
//
//   node --test e2e/impact.test.mjs   (needs bin/duplex built with the app: make build)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { launchBrowser, ms, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

let demo, data, url, browser, context, tab, page;
const consoleErrors = [];

before(async () => {
  ({ proc: demo, data, url } = await startDemo({ prefix: "duplex-e2e-impact-", poll: "300ms" }));
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

test("the Impact button replays recent syncs through the unsaved draft", { timeout: ms(300000) }, async (t) => {
  const step = (name, fn) => harnessStep(t, tab, name, fn);
  await step("the demo's escalated ticket has synced", async () => {
    await page.goto(url + "/#/connections");
    await page.locator('a[href="#/connections/1"]').first().waitFor({ timeout: ms(20000) }); // signed in: the session cookie is set
    for (const deadline = Date.now() + ms(20000); ; ) {
      const r = await context.request.get(url + "/api/events?status=done&connection_id=1");
      if (r.status() === 200 && (await r.json()).length > 0) break;
      assert.ok(Date.now() < deadline, "no synced event in time");
      await new Promise((ok) => setTimeout(ok, 300));
    }
  });
  await step("a draft of the incoming script, then Impact: the issue with its title old → new", async () => {
    await page.goto(url + "/#/connections/1/scripts");
    const editor = page.locator('[data-script="b.incoming"] .monaco-editor');
    await editor.waitFor({ timeout: ms(30000) });
    await editor.locator(".view-lines").click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.press("Delete");
    await page.keyboard.type('entity.title = "[T] " + replica.title;');
    await page.click('[data-testid="impact-run"]');
    const panel = page.locator('[data-testid="impact"] [data-direction="a_to_b"]');
    await panel.waitFor({ timeout: ms(20000) });
    assert.match(await panel.locator('[data-testid="impact-totals"]').innerText(), /1 patch differs/);
    const text = await panel.locator("li").first().innerText();
    assert.match(text, /patch differs/);
    assert.match(text, /patch\.title\s+"Checkout fails with a 500"\s+→\s+"\[T\] Checkout fails with a 500"/);
    assert.equal(await page.locator('[data-testid="unsaved"]').innerText(), "1 unsaved: b.incoming");
    await screenshot(page, "impact-preview", { at: panel });
  });
  assert.deepEqual(consoleErrors, []);
});
