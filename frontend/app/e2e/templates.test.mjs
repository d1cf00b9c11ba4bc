// Browser test of team templates against `duplex demo`: a team admin saves
// the demo connection as a template with a parameter and shares it with a
// second team; an editor there creates a connection from it and forks it;
// the admin publishes version 2; the editor's connection shows the update
// banner with the diff and upgrades (through the 409 for a local edit), then
// exports the template and imports the archive into its own team.
// Users and teams are set up through the API with the demo's token, as
// auth.test.mjs does.
//
//   npm run test:browser   (DUPLEX_BIN, CHROMIUM, TEST_OUTPUT as in app.test.mjs)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser, ms, refuseOthers, screenshot, startDemo, step as harnessStep, Tab } from "./harness.mjs";

const ALICE = { email: "alice@example.com", name: "Alice Admin", password: "alice's long password" };
const BOB = { email: "bob@example.com", name: "Bob Editor", password: "bob's long password" };
const OLGA = { email: "olga@example.com", name: "Olga Org", password: "olga's long password" };

let demo, data, url, token, browser;
const consoleErrors = [];

/** asAdmin calls the API as the demo's org admin, with its token. */
async function asAdmin(method, path, body) {
  const r = await fetch(url + path, {
    method,
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) assert.fail(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A browser context signed in as a person (the API's sign-in sets the session cookie). */
async function signedIn(who) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const r = await context.request.post(url + "/api/auth/login", { data: { email: who.email, password: who.password } });
  assert.equal(r.status(), 200, await r.text());
  // 409: the upgrade refused because of a local edit, on purpose.
  const tab = await new Tab(context, { errors: consoleErrors, expected: /status of 409/ }).open();
  await refuseOthers(context, consoleErrors);
  return tab; // steps read tab.page, which a failed step replaces
}

function step(t, tab, name, fn) {
  return harnessStep(t, tab, name, fn, { prefix: "tpl-" });
}

before(async () => {
  ({ proc: demo, data, url, token } = await startDemo({ prefix: "duplex-e2e-tpl-", poll: "500ms" }));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  demo?.kill("SIGTERM");
  if (data) rmSync(data, { recursive: true, force: true });
});

test("team templates: save with a parameter, share, use, fork, publish v2, upgrade", { timeout: ms(900000) }, async (t) => {
  // Team A is the demo's team (it owns the demo connection); team B is new.
  const demoConn = await asAdmin("GET", "/api/connections/1");
  const teamA = demoConn.team_id;
  const teamB = (await asAdmin("POST", "/api/teams", { name: "beta" })).id;
  const alice = await asAdmin("POST", "/api/users", { ...ALICE, org_admin: false });
  const bob = await asAdmin("POST", "/api/users", { ...BOB, org_admin: false });
  await asAdmin("POST", "/api/users", { ...OLGA, org_admin: true });
  await asAdmin("PUT", `/api/teams/${teamA}/members/${alice.id}`, { role: "admin" });
  await asAdmin("PUT", `/api/teams/${teamB}/members/${bob.id}`, { role: "editor" });
  // Team B's own systems: copies of the demo databases.
  const bSystems = [];
  for (const id of [demoConn.system_a_id, demoConn.system_b_id]) {
    const sys = await asAdmin("GET", `/api/systems/${id}`);
    const dsn = join(data, "beta-" + sys.settings.dsn.split("/").pop());
    copyFileSync(sys.settings.dsn, dsn);
    bSystems.push(await asAdmin("POST", "/api/systems", { name: "beta-" + sys.name, kind: sys.kind, team_id: teamB, settings: { ...sys.settings, dsn } }));
  }

  const A = await signedIn(ALICE);
  const B = await signedIn(BOB);
  const O = await signedIn(OLGA);
  let tplID, bConnID, forkID;

  await step(t, A, "A's admin saves the demo connection as a template, pulling a parameter out of a selection", async () => {
    const { page } = A;
    await page.goto(url + "/#/connections/1/scripts");
    await page.click('[data-testid="save-as-template"]');
    const form = page.locator('[data-testid="save-template"]');
    await form.waitFor();
    await form.locator('input[name="template-name"]').fill("escalate");
    await form.locator('input[name="template-title"]').fill("Escalate to engineering");
    await form.locator('[data-script-tab="a.trigger"]').click();
    const src = form.locator('[data-testid="template-source"]');
    assert.equal((await src.inputValue()).trim(), '"todev" in labels');
    // Select todev (without its quotes), as a person would with the mouse.
    await src.evaluate((el) => el.setSelectionRange(1, 6));
    await form.locator('[data-testid="use-selection"]').click();
    const row = form.locator('[data-param="0"]');
    assert.equal(await row.locator('input[name="literal"]').inputValue(), '"todev"');
    assert.equal(await row.locator('input[name="param-name"]').inputValue(), "todev");
    assert.equal(await row.locator('[data-testid="param-default"]').innerText(), '"todev"');
    assert.match(await row.innerText(), /1× in a\.trigger/);
    // A type that disagrees with the literal is refused before saving.
    await row.locator('select[name="param-type"]').selectOption("number");
    assert.match(await row.locator('[data-testid="param-error"]').innerText(), /type number, but "todev" is a string/);
    assert.equal(await form.locator('[data-testid="save-template-submit"]').isDisabled(), true);
    await row.locator('select[name="param-type"]').selectOption("string");
    await row.locator('input[name="param-name"]').fill("label");
    await row.locator('input[name="param-description"]').fill("the label that escalates a ticket");
    await form.locator('input[type="checkbox"]').check(); // preview with parameters
    assert.equal((await src.inputValue()).trim(), "{{label}} in labels");
    // Org-wide is there (a team admin), private is the default.
    assert.equal(await form.locator('select[name="visibility"]').inputValue(), "private");
    await form.locator('input[name="note"]').fill("first");
    await screenshot(page, "tpl-1-save-as");
    await form.locator('[data-testid="save-template-submit"]').click();
    await page.waitForURL(/#\/templates\/\d+$/);
    tplID = Number(/templates\/(\d+)/.exec(page.url())[1]);
    const tpl = await asAdmin("GET", `/api/team-templates/${tplID}`);
    assert.equal(tpl.team_id, teamA);
    assert.equal(tpl.visibility, "private");
    assert.deepEqual(tpl.body.params, [{ name: "label", type: "string", description: "the label that escalates a ticket", default: "todev" }]);
    assert.equal(tpl.body.sources.a.trigger.trim(), "{{label}} in labels");
  });

  await step(t, A, "the template page lists the version; the admin shares it with team B", async () => {
    const { page } = A;
    const v1 = page.locator('[data-testid="template-versions"] tr[data-version="1"]');
    await v1.waitFor();
    assert.match(await v1.innerText(), /first/);
    assert.match(await v1.innerText(), /alice@example\.com/);
    assert.match(await page.locator('[data-testid="version-source"]').innerText(), /\{\{label\}\} in labels/);
    const sharing = page.locator('[data-testid="sharing"]');
    await sharing.locator('input[value="shared"]').check();
    // Alice is not in team B. The team directory is off (the default), so
    // the form does not name B (issue 24); she shares with it by its id.
    assert.equal(await sharing.locator(`input[name="share-team"][value="${teamB}"]`).count(), 0);
    assert.doesNotMatch(await sharing.innerText(), /beta/);
    await sharing.locator('input[name="share-ids"]').fill(String(teamB));
    await sharing.locator('[data-testid="save-sharing"]').click();
    await page.getByText("Sharing saved").waitFor();
    const tpl = await asAdmin("GET", `/api/team-templates/${tplID}`);
    assert.equal(tpl.visibility, "shared");
    assert.deepEqual(tpl.shared_with, [teamB]);
    await screenshot(page, "tpl-2-template-page");
  });

  await step(t, O, "an org admin turns the team directory on in the Team page", async () => {
    const { page } = O;
    await page.goto(url + "/#/team");
    const box = page.locator('[data-testid="team-directory"] input[name="team-directory"]');
    await box.waitFor();
    assert.equal(await box.isChecked(), false); // off by default
    await box.check();
    await page.getByText("Team admins now see every team's name").waitFor();
    assert.equal((await asAdmin("GET", "/api/org-settings")).team_directory, true);
  });

  await step(t, A, "with the directory on, A's sharing form names team B, checked", async () => {
    const { page } = A;
    await page.reload();
    const named = page.locator(`[data-testid="sharing"] input[name="share-team"][value="${teamB}"]`);
    await named.waitFor();
    assert.equal(await named.isChecked(), true);
    assert.match(await page.locator('[data-testid="sharing"]').innerText(), /beta/);
  });

  await step(t, B, "B's editor sees it in the gallery and creates a connection from it", async () => {
    const { page } = B;
    await page.goto(url + "/#/connections/new");
    await page.click(`[data-template="team-${tplID}"]`);
    const form = page.locator("form.form");
    await form.locator('input[name="name"]').fill("beta-escalation");
    assert.equal(await form.locator("textarea").first().inputValue(), '"todev"');
    await form.locator('button[type="submit"]').click();
    await page.waitForURL(/#\/connections\/\d+\/scripts$/);
    bConnID = Number(/connections\/(\d+)/.exec(page.url())[1]);
    const conn = await asAdmin("GET", `/api/connections/${bConnID}`);
    assert.equal(conn.team_id, teamB);
    assert.equal(conn.template_id, tplID);
    assert.equal(conn.template_version, 1);
    assert.equal(conn.system_a_id, bSystems[0].id);
    await page.locator(`a[href="#/templates/${tplID}"]`).first().waitFor();
    assert.equal(await page.locator('[data-testid="template-update"]').count(), 0);
  });

  await step(t, B, "B cannot change A's template (disabled, with the reason) but forks it into B", async () => {
    const { page } = B;
    await page.goto(url + `/#/templates/${tplID}`);
    await page.locator('[data-testid="template-versions"]').waitFor();
    assert.match(await page.locator('[data-testid="read-only"]').innerText(), /fork it to change it in your team/);
    assert.match(await page.locator('[data-testid="sharing"]').innerText(), /only admins of team/);
    const fork = page.locator('[data-testid="fork"]');
    assert.equal(await fork.locator('select[name="fork-team"]').inputValue(), String(teamB));
    await fork.locator('input[name="fork-name"]').fill("escalate-beta");
    await fork.locator('[data-testid="fork-submit"]').click();
    await page.waitForURL((u) => /#\/templates\/\d+$/.test(u.toString()) && !u.toString().endsWith(`/templates/${tplID}`));
    forkID = Number(/templates\/(\d+)/.exec(page.url())[1]);
    await page.locator(".page-head", { hasText: "forked from" }).waitFor();
    const fork1 = await asAdmin("GET", `/api/team-templates/${forkID}`);
    assert.equal(fork1.team_id, teamB);
    assert.equal(fork1.forked_from_id, tplID);
    assert.equal(fork1.visibility, "private");
    // Bob edits in B: the fork is his team's, so sharing is for B's admins only and publishing is allowed.
    assert.equal(await page.locator('[data-testid="read-only"]').count(), 0);
  });

  await step(t, A, "A publishes version 2 from the connection, with a note", async () => {
    const { page } = A;
    const cur = await asAdmin("GET", "/api/connections/1");
    await asAdmin("PUT", "/api/connections/1/scripts/a/outgoing", { source: cur.scripts.a.outgoing.source + "replica.requester = entity.requester;\n" });
    await page.goto(url + "/#/connections/1/save-as-template");
    const form = page.locator('[data-testid="save-template"]');
    await form.locator('input[name="template-name"]').fill("escalate");
    assert.match(await form.locator('[data-testid="new-version"]').innerText(), /publishes version 2/);
    // The last version's title, description and parameters, to start from.
    await form.locator('[data-testid="fill-from-latest"]').click();
    assert.equal(await form.locator('input[name="template-title"]').inputValue(), "Escalate to engineering");
    const row = form.locator('[data-param="0"]');
    assert.equal(await row.locator('input[name="literal"]').inputValue(), '"todev"');
    assert.equal(await row.locator('input[name="param-name"]').inputValue(), "label");
    assert.equal(await row.locator('input[name="param-description"]').inputValue(), "the label that escalates a ticket");
    await form.locator('input[name="note"]').fill("requester crosses over too");
    assert.equal(await form.locator('[data-testid="save-template-submit"]').innerText(), "Publish version 2");
    await form.locator('[data-testid="save-template-submit"]').click();
    await page.waitForURL(new RegExp(`#/templates/${tplID}$`));
    const v2 = page.locator('[data-testid="template-versions"] tr[data-version="2"]');
    await v2.waitFor();
    assert.match(await v2.innerText(), /requester crosses over too/);
    // The diff between the two versions, computed in the browser.
    await page.locator('[data-testid="template-versions"] tr[data-version="1"] [data-testid="compare"]').click();
    const file = page.locator('[data-testid="template-diff"] [data-file="a.outgoing.js"]');
    await file.waitFor();
    assert.match(await file.locator(".dl.add").innerText(), /replica\.requester = entity\.requester;/);
    assert.equal(await page.locator('[data-testid="template-diff"] [data-file="a.trigger.expr"]').count(), 0);
    await screenshot(page, "tpl-3-version-diff");
  });

  await step(t, B, "B's connection says the template was updated; the diff; upgrade through the local-edit confirmation", async () => {
    const { page } = B;
    // A local edit in B's connection since the template rendered it.
    const cur = await asAdmin("GET", `/api/connections/${bConnID}`);
    await asAdmin("PUT", `/api/connections/${bConnID}/scripts/b/outgoing`, { source: cur.scripts.b.outgoing.source + "// beta's own tweak\n" });
    await page.goto(url + `/#/connections/${bConnID}/scripts`);
    const banner = page.locator('[data-testid="template-update"]');
    await banner.waitFor();
    assert.match(await banner.innerText(), /version 2 is out \(this connection is on 1/);
    await banner.locator('[data-testid="review-upgrade"]').click();
    const file = page.locator('[data-testid="template-diff"] [data-file="a.outgoing.js"]');
    await file.waitFor();
    assert.match(await file.locator(".dl.add").innerText(), /replica\.requester = entity\.requester;/);
    assert.match(await page.locator('[data-testid="local-edits"]').innerText(), /b\.outgoing/);
    assert.equal(await page.locator('input[name="param-label"]').inputValue(), '"todev"');
    await screenshot(page, "tpl-4-upgrade");
    await page.click('[data-testid="upgrade"]');
    const conflict = page.locator('[data-testid="upgrade-conflict"]');
    await conflict.waitFor();
    assert.match(await conflict.innerText(), /b\.outgoing/);
    await conflict.locator('[data-testid="discard-and-upgrade"]').click();
    await page.waitForURL(new RegExp(`#/connections/${bConnID}/scripts$`));
    await page.getByText("Upgraded to version 2").waitFor();
    const after = await asAdmin("GET", `/api/connections/${bConnID}`);
    assert.equal(after.template_version, 2);
    assert.match(after.scripts.a.outgoing.source, /replica\.requester = entity\.requester;/);
    assert.doesNotMatch(after.scripts.b.outgoing.source, /beta's own tweak/);
    assert.equal(await page.locator('[data-testid="template-update"]').count(), 0);
  });

  await step(t, B, "B exports version 2 as an archive and imports it into B under another name", async () => {
    const { page } = B;
    await page.goto(url + `/#/templates/${tplID}`);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="export"]')]);
    assert.equal(download.suggestedFilename(), "escalate-v2.tar.gz");
    const file = join(data, "escalate-v2.tar.gz");
    await download.saveAs(file);
    await page.goto(url + "/#/templates/import");
    const form = page.locator('[data-testid="import"]');
    await form.locator('input[name="archive"]').setInputFiles(file);
    await form.locator('input[name="import-name"]').fill("escalate-imported");
    await form.locator('[data-testid="import-submit"]').click();
    await page.waitForURL(/#\/templates\/\d+$/);
    const id = Number(/templates\/(\d+)/.exec(page.url())[1]);
    const imported = await asAdmin("GET", `/api/team-templates/${id}`);
    assert.equal(imported.team_id, teamB);
    assert.equal(imported.name, "escalate-imported");
    assert.match(imported.body.sources.a.outgoing, /replica\.requester/);
    await page.locator('[data-testid="template-versions"] tr[data-version="1"]', { hasText: "imported" }).waitFor();
  });

  await A.context.close();
  await B.context.close();
});

test("no errors in the browser console, nothing fetched from elsewhere (templates)", () => {
  assert.deepEqual(consoleErrors, []);
});
