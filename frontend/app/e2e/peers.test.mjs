// Browser test of the Peer links page (docs/peers.md): two `duplex demo`
// deployments on loopback, X and Y, each in its own browser context (both
// are on 127.0.0.1, and cookies do not tell ports apart). X's admin makes an
// invitation in the app, Y's admin pastes the code and accepts; both pages
// show the link active; a ticket escalated on X reaches Y's engineering
// database and the pages count it sent and received, with a last contact;
// Y pauses the link, X's next ticket waits in X's outbox (shown as waiting)
// and goes on resume; X revokes, and Y's page shows it revoked by the peer.
//
//   node --test e2e/peers.test.mjs   (needs bin/duplex built with the app: make build)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, ms, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

const consoleErrors = [];
let browser;
/** x and y are the two deployments: the demo (proc, data, url), its browser context and tab, and its page. */
const x = { name: "x" };
const y = { name: "y" };

/** sql runs a statement on one deployment's demo database, as a person with sqlite3 would. */
function sql(d, db, statement) {
  return execFileSync("sqlite3", [join(d.data, db), statement], { encoding: "utf8" }).trim();
}

/** until polls check every 300 ms until it answers true, failing with what after limit ms. */
async function until(check, limit, what) {
  for (const deadline = Date.now() + ms(limit); ; ) {
    if (await check()) return;
    assert.ok(Date.now() < deadline, typeof what === "function" ? await what() : what);
    await new Promise((ok) => setTimeout(ok, 300));
  }
}

/** api reads a deployment's API with its browser context's session cookie. */
async function api(d, path) {
  const r = await d.context.request.get(d.url + path);
  assert.equal(r.status(), 200, path);
  return r.json();
}

/** row is the page's row of the deployment's one link. */
const row = (d) => d.tab.page.locator('tr[data-testid^="peer-link-"]').first();

/**
 * rowSays reopens the Peer links page until the link's row matches re (the
 * page itself reloads every 10 s; reopening makes the wait shorter).
 */
async function rowSays(d, re, limit, what) {
  let last = "";
  await until(
    async () => {
      await d.tab.page.goto(d.url + "/#/peers");
      await d.tab.page.reload();
      const r = row(d);
      await r.waitFor({ timeout: ms(15000) });
      last = await r.innerText();
      return re.test(last);
    },
    limit,
    () => `${d.name}: ${what}; the row says: ${last}`,
  );
  return last;
}

/** systemLabel is the option text of the deployment's system called name in the forms' system picker. */
async function systemLabel(d, name) {
  const s = (await api(d, "/api/systems")).find((s) => s.name === name || s.name.includes(name));
  assert.ok(s, `${d.name} has no system named like ${name}`);
  return `${s.name} (${s.kind})`;
}

/** ticket adds a ticket on X's support desk that the escalation trigger sends to engineering. */
function ticket(subject) {
  sql(x, "support.db", `INSERT INTO tickets (subject, labels, priority) VALUES ('${subject}', 'todev', 'high')`);
}

before(async () => {
  for (const d of [x, y]) Object.assign(d, await startDemo({ prefix: `duplex-e2e-peers-${d.name}-`, poll: "300ms" }));
  browser = await launchBrowser();
  for (const d of [x, y]) {
    d.context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
    // A 401 is GET /api/me before the demo's automatic sign-in: expected once per page.
    // The Revoke button asks to confirm: every page of the story (a failed step opens a new one) says yes.
    d.tab = await new Tab(d.context, { errors: consoleErrors, expected: /status of 401/, onPage: (p) => p.on("dialog", (dialog) => dialog.accept()) }).open();
    await refuseOthers(d.context, consoleErrors);
  }
});

after(async () => {
  await browser?.close();
  for (const d of [x, y]) {
    d.proc?.kill("SIGTERM");
    if (d.data) rmSync(d.data, { recursive: true, force: true });
  }
});

test("a peer link made in the app: invite, accept, traffic, pause and resume, revoke", { timeout: ms(600000) }, async (t) => {
  const step = (d, name, fn) => harnessStep(t, d.tab, name, fn, { prefix: "peers-" });
  let code;

  await step(x, "X's admin makes an invitation for its support desk and gets a one-time code", async () => {
    const page = x.tab.page;
    await page.goto(x.url + "/#/peers");
    await page.getByText("No peer links").waitFor({ timeout: ms(20000) });
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Invite another deployment" }) });
    await form.locator('input[name="name"]').fill("escalation");
    await form.locator('select[name="system_id"]').selectOption({ label: await systemLabel(x, "support") });
    await form.locator('input[name="template"]').fill("support-escalation");
    await form.locator('input[name="public_url"]').fill(x.url);
    await form.locator('select[name="side"]').selectOption("a");
    await form.getByRole("button", { name: "Make the invitation" }).click();
    const shown = page.locator('[data-testid="peer-code"] pre');
    await shown.waitFor({ timeout: ms(15000) });
    code = (await shown.innerText()).trim();
    assert.match(code, /^dpxpeer1\./);
    await row(x).waitFor();
    assert.match(await row(x).innerText(), /invited/);
    assert.match(await row(x).innerText(), /waiting for the other admin/);
    await screenshot(page, "peers-invited", { at: shown });
  });

  await step(y, "Y's admin pastes the code, picks its engineering tracker and accepts: both sides are active", async () => {
    assert.ok(code, "no code from the invitation step");
    const page = y.tab.page;
    await page.goto(y.url + "/#/peers");
    await page.getByText("No peer links").waitFor({ timeout: ms(20000) });
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Accept an invitation" }) });
    await form.locator('input[name="code"]').fill(code);
    await form.locator('input[name="name"]').fill("escalation");
    await form.locator('select[name="system_id"]').selectOption({ label: await systemLabel(y, "engineering") });
    await form.locator('input[name="template"]').fill("support-escalation");
    await form.locator('input[name="public_url"]').fill(y.url);
    await form.getByRole("button", { name: "Accept" }).click();
    await row(y).waitFor({ timeout: ms(15000) });
    assert.match(await row(y).innerText(), /active/);
    assert.match(await row(y).innerText(), new RegExp(x.url.replace(/[.:/]/g, "\\$&")), "Y's row names X's address");
    await rowSays(x, /\bactive\b/, 20000, "X's link did not become active");
    await screenshot(page, "peers-accepted", { at: row(y) });
  });

  await step(x, "a ticket escalated on X reaches Y; the pages count it sent and received, with a last contact", async () => {
    ticket("Peer link: checkout fails");
    await until(() => sql(y, "engineering.db", "SELECT COUNT(*) FROM issues WHERE title LIKE '%Peer link: checkout fails%'") === "1", 30000, "the ticket did not reach Y's engineering tracker");
    const xs = await rowSays(x, /[1-9]\d* sent/, 20000, "X counts nothing sent");
    assert.doesNotMatch(xs, /never/, "X's last contact");
    // Y's acknowledgement of the create leaves its outbox too.
    const ys = await rowSays(y, /\b0 waiting here[\s\S]*[1-9]\d* received/, 20000, "Y counts nothing received, or keeps its acknowledgement");
    assert.doesNotMatch(ys, /never/, "Y's last contact");
    await screenshot(x.tab.page, "peers-x-traffic", { at: row(x) });
    await screenshot(y.tab.page, "peers-y-traffic", { at: row(y) });
  });

  await step(y, "Y pauses: X's next ticket waits in X's outbox and is shown waiting", async () => {
    const page = y.tab.page;
    await page.goto(y.url + "/#/peers");
    await row(y).getByRole("button", { name: "Pause" }).click();
    await until(async () => /\bpaused\b/.test(await row(y).innerText()), 15000, "Y's row does not say paused");
    assert.equal(await row(y).getByRole("button", { name: "Resume" }).count(), 1);
    ticket("Peer link: sent while paused");
    const xs = await rowSays(x, /[1-9]\d* waiting here/, 30000, "X shows nothing waiting while Y is paused");
    assert.match(xs, /peer_paused/, "X's last error says why it waits");
    assert.equal(sql(y, "engineering.db", "SELECT COUNT(*) FROM issues WHERE title LIKE '%sent while paused%'"), "0", "Y applied a message while paused");
    await screenshot(x.tab.page, "peers-x-waiting", { at: row(x) });
    await screenshot(page, "peers-y-paused", { at: row(y) });
  });

  await step(y, "Y resumes: the waiting message arrives and X's outbox empties", async () => {
    const page = y.tab.page;
    await page.goto(y.url + "/#/peers");
    await row(y).getByRole("button", { name: "Resume" }).click();
    await until(async () => /\bactive\b/.test(await row(y).innerText()), 15000, "Y's row does not say active again");
    // X's sender backs off up to 30 s while the peer refuses.
    await until(() => sql(y, "engineering.db", "SELECT COUNT(*) FROM issues WHERE title LIKE '%sent while paused%'") === "1", 60000, "the waiting ticket did not arrive after resume");
    await rowSays(x, /\b0 waiting here/, 20000, "X's outbox did not empty");
  });

  await step(x, "X revokes: its link is revoked for good and Y's page shows it revoked by the peer", async () => {
    const page = x.tab.page;
    await page.goto(x.url + "/#/peers");
    await row(x).getByRole("button", { name: "Revoke" }).click(); // the confirm is accepted (before)
    await until(async () => /\brevoked\b/.test(await row(x).innerText()), 15000, "X's row does not say revoked");
    assert.equal(await row(x).getByRole("button").count(), 0, "a revoked link keeps no buttons");
    await rowSays(y, /revoked_by_peer/, 20000, "Y did not learn of the revoke");
    assert.equal(await row(y).getByRole("button").count(), 0);
    const audit = await api(x, "/api/audit?limit=50");
    assert.ok(audit.some((a) => a.action === "peer.revoke"), "no peer.revoke audit entry on X");
    assert.ok(audit.some((a) => a.action === "peer.invite"), "no peer.invite audit entry on X");
    await screenshot(page, "peers-x-revoked", { at: row(x) });
    await screenshot(y.tab.page, "peers-y-revoked", { at: row(y) });
  });

  assert.deepEqual(consoleErrors, []);
});
