// End-to-end test of the web inspector in headless Chromium, for
// TestInspector in test/system (which starts the server, creates the
// endpoints and hands over the webhooks to post). It logs in, watches the
// vendors' webhooks arrive live, filters them with CEL, opens an event,
// reprocesses a quarantined request, discards one, checks what a read token sees,
// goes back from an event to the list as it was left, and
// checks each page's accessibility with axe-core; it saves screenshots to
// ARTIFACTS_DIR. Any failed check ends it with exit code 1 and a message.
//
// Environment:
//   HOOKSTREAM_URL   the server's HTTP base URL
//   ADMIN_TOKEN, READ_TOKEN   API tokens of both scopes
//   WEBHOOKS_FILE    JSON: {"live": [post…], "more": post, "bad": post, "bad2": post};
//                    post = {path, headers, body}; bad and bad2 are quarantined
//   SECRETS          JSON array of strings no page may show a read token:
//                    the Pipedrive password and the Closer token first
//   ARTIFACTS_DIR    where screenshots go (created)
//   CHROMIUM         the browser (default /usr/bin/chromium)
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("HOOKSTREAM_URL");
const adminToken = env("ADMIN_TOKEN");
const readToken = env("READ_TOKEN");
const webhooks = JSON.parse(await readFile(env("WEBHOOKS_FILE"), "utf8"));
const secrets = JSON.parse(env("SECRETS"));
const artifacts = env("ARTIFACTS_DIR");
await mkdir(artifacts, { recursive: true });
const axeSource = await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

const checks = [];
const check = (ok, what) => {
  if (!ok) throw new Error(`FAILED: ${what}`);
  checks.push(what);
  console.log(`ok - ${what}`);
};

async function post({ path, headers, body }) {
  const res = await fetch(base + path, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 202) throw new Error(`POST ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

/** quarantined lists every quarantine entry's id through the REST API. */
async function quarantined(token) {
  const ids = [];
  let pageToken = "";
  do {
    const res = await fetch(`${base}/v1/quarantine?include_reprocessed=true&page_token=${encodeURIComponent(pageToken)}`,
      { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /v1/quarantine: ${res.status} ${text}`);
    const body = JSON.parse(text);
    ids.push(...(body.requests ?? []).map((r) => r.id));
    pageToken = body.nextPageToken ?? "";
  } while (pageToken);
  return ids;
}

// Playwright starts Chromium with a fresh temporary profile of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  timeout: 60_000,
});
const problems = []; // CSP violations, page errors, failed requests to other origins

async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("console", (m) => {
    if (m.type() === "error" && /Content.Security.Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) problems.push(`request to another origin: ${r.url()}`);
  });
  return page;
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: false });
}

/** axe runs axe-core in the page; serious or critical violations fail. */
async function axe(page, name) {
  // Evaluated through DevTools, which the page's CSP does not restrict:
  // the page itself never runs inline script.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of result) console.log(`  axe ${name}: ${v.impact} ${v.id} (${v.help}) at ${v.nodes.join(", ")}`);
  check(bad.length === 0, `accessibility of ${name}: no serious or critical axe violations`);
}

async function login(page, token) {
  await page.goto(`${base}/ui/`);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("header.top").waitFor();
}

const rows = (page) => page.locator("#events tbody tr");

try {
  // The page and its headers.
  const res = await fetch(`${base}/ui/`);
  const csp = res.headers.get("content-security-policy") ?? "";
  check(res.status === 200 && csp.includes("script-src 'self'") && !csp.includes("unsafe-inline") && csp.includes("frame-ancestors 'none'"),
    "GET /ui/ answers with a CSP that allows no inline script and no framing");
  check(res.headers.get("x-content-type-options") === "nosniff" && res.headers.get("referrer-policy") === "no-referrer",
    "GET /ui/ sends nosniff and no-referrer");
  const html = await res.text();
  check(!/<script>|<script [^>]*>[^<]/.test(html) && !/ style=/.test(html), "the page has no inline script or style");
  const anon = await fetch(`${base}/hookstream.v1.SourceService/ListSources`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  check(anon.status === 401, "the inspector's APIs refuse a call without a token");

  // Login: a wrong token is refused with the server's answer.
  const page = await newPage();
  await page.goto(`${base}/`);
  check(page.url() === `${base}/ui/`, "GET / leads to the inspector");
  await axe(page, "login page");
  await page.getByLabel("API token").fill("not-a-token-0123456789");
  await page.keyboard.press("Enter");
  await page.locator("#login-error").filter({ hasText: "not valid" }).waitFor();
  check(true, "a wrong token shows the server's error");
  await shot(page, "01-login-error");

  // An empty log teaches how to make an event.
  await page.getByLabel("API token").fill(adminToken);
  await page.keyboard.press("Enter");
  await page.locator("#send-commands").waitFor();
  const commands = await page.locator("#send-commands").textContent();
  check(/hookstream send --source \S+ --example /.test(commands), "the empty events page shows the hookstream send command");
  await shot(page, "02-events-empty");

  // The curl command it shows works as it is (with the source's token).
  await page.locator("#live-status").filter({ hasText: "Live" }).waitFor();
  const curl = await page.locator("#send-curl").textContent();
  const sent = JSON.parse(execFileSync("bash", ["-c", curl], { env: { ...process.env, SOURCE_TOKEN: secrets[1] }, encoding: "utf8", timeout: 10_000 }));
  check(sent.status === "accepted", `the empty page's curl command stores an event: ${curl}`);

  // Webhooks of every vendor appear live, newest first.
  const ids = [sent.event_id];
  for (const w of webhooks.live) ids.push((await post(w)).event_id);
  await page.waitForFunction((n) => document.querySelectorAll("#events tbody tr").length >= n, ids.length);
  const shownIds = await rows(page).evaluateAll((trs) => trs.map((tr) => tr.dataset.id));
  check(JSON.stringify(shownIds) === JSON.stringify([...ids].reverse()), `the ${ids.length} webhooks appear live, newest first`);
  const vendors = await page.locator("#events tbody td.col-vendor").allTextContents();
  check(["Closer", "Pipedrive", "ClinchPad"].every((v) => vendors.includes(v)), "events of all three vendors are listed");
  const firstRow = await rows(page).first().locator("td").allTextContents();
  check(firstRow.length === 6 && firstRow.every((c, i) => i === 5 || c.trim() !== ""), "each row shows time, source, vendor, type, subject and contact");
  await shot(page, "03-events-live");
  await axe(page, "events page");

  // Pause holds new events back; resume delivers them.
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator("#live-status").filter({ hasText: "Paused" }).waitFor();
  const extra = await post(webhooks.more);
  await page.waitForTimeout(500); // nothing to wait for: a paused stream must stay quiet
  check((await rows(page).count()) === ids.length, "a paused list does not change");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator(`#events tbody tr[data-id="${extra.event_id}"]`).waitFor();
  check(true, "resume delivers what arrived while paused");
  ids.push(extra.event_id);

  // CEL: a filter narrows the list; a bad one shows the server's error inline.
  await page.getByLabel("CEL filter").fill("event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE");
  await page.keyboard.press("Enter");
  await page.locator("#live-status").filter({ hasText: "Live" }).waitFor();
  await page.waitForFunction(() => {
    const v = [...document.querySelectorAll("#events tbody td.col-vendor")].map((td) => td.textContent);
    return v.length > 0 && v.every((x) => x === "Pipedrive");
  });
  const pdRows = await rows(page).count();
  check(pdRows >= 1 && pdRows < ids.length, `the filter narrows the list to Pipedrive (${pdRows} of ${ids.length})`);
  await shot(page, "04-events-filtered");
  await page.getByLabel("CEL filter").fill("event.nope == 1");
  await page.keyboard.press("Enter");
  await page.locator("#filter-error").filter({ hasText: /\S/ }).waitFor();
  const filterError = await page.locator("#filter-error").textContent();
  check(/nope|undefined field|no such/i.test(filterError) && (await page.getByLabel("CEL filter").getAttribute("aria-invalid")) === "true",
    `a bad filter shows the server's type-check error inline: ${JSON.stringify(filterError)}`);
  await shot(page, "05-events-bad-filter");
  check(await page.locator("#events").isHidden() && await page.getByRole("button", { name: "Load earlier" }).isHidden() &&
    await page.getByRole("button", { name: "Pause" }).isDisabled(),
    "with a bad filter nothing is listed, loaded or streamed: no table, no load earlier, Pause off");
  await page.getByLabel("CEL filter").fill("");
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll("#events tbody tr").length === n, ids.length);
  check(await page.getByRole("button", { name: "Pause" }).isEnabled(), "clearing the filter reloads every event (the initial load reads the log), Pause on again");
  // The README's picture (docs/img/inspector.png is a copy).
  await page.getByLabel("CEL filter").blur();
  await page.screenshot({ path: join(artifacts, "00-readme-events.png"), clip: { x: 0, y: 0, width: 1280, height: 520 } });
  // The initial load went back as far as "load earlier" looks (40 days)
  // and found nothing older, so there is nothing more to load.
  await page.getByText(/^(No earlier events|\d+ events? loaded; there are no earlier ones)\.$/).waitFor();
  check(await page.getByRole("button", { name: "Load earlier" }).isDisabled(), "load earlier is done once it has found the first event");

  // Keyboard: Tab reaches the filter box, then the rows; Enter opens one.
  await page.reload();
  await page.locator("#events tbody tr").first().waitFor();
  await page.locator("body").focus();
  let tabs = 0;
  while (tabs < 15 && !(await page.evaluate(() => document.activeElement?.id === "filter"))) {
    await page.keyboard.press("Tab");
    tabs++;
  }
  check(await page.evaluate(() => document.activeElement?.id === "filter"), `Tab reaches the filter box (${tabs} presses)`);
  while (tabs < 30 && !(await page.evaluate(() => document.activeElement?.closest("#events tbody") !== null))) {
    await page.keyboard.press("Tab");
    tabs++;
  }
  const pdId = ids[2]; // the Pipedrive deal change: it has changes
  const focusedId = await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.id);
  check(focusedId === ids[ids.length - 1], "Tab then reaches the newest row");
  await page.locator(`#events tbody tr[data-id="${pdId}"] a`).focus();
  await page.keyboard.press("Enter");
  await page.locator("#canonical").waitFor();
  check(page.url().endsWith(`#/events/${pdId}`), "Enter on a row opens its event");

  // Detail: pretty canonical JSON, the typed payload, changes, the raw body, the cursor, commands.
  const canonical = await page.locator("#canonical").textContent();
  check(canonical.includes(`\n  "id": "${pdId}"`) && canonical.includes('"type": "deal.updated"'), "the canonical event is pretty JSON");
  check((await page.locator("#payload").textContent()).includes('"meta"'), "the typed vendor payload is shown");
  const changeRows = await page.locator("#changes tbody tr").count();
  check(changeRows > 0, `the changes are a before/after table (${changeRows} rows)`);
  const raw = await page.locator("#raw-body").textContent();
  check(raw.includes('\n  "meta": {') && !raw.includes(secrets[0]), "the original request body is pretty-printed");
  check(/\d+/.test(await page.locator("#cursor").textContent()), "the cursor is shown");
  await page.getByRole("button", { name: "Copy as curl" }).click();
  check((await page.locator("#command").textContent()).startsWith("curl -s -H \"Authorization: Bearer $HOOKSTREAM_TOKEN\""), "copy as curl gives a curl command without the token");
  await page.getByRole("button", { name: "Copy as grpcurl" }).click();
  const grpcurlCommand = await page.locator("#command").textContent();
  check(grpcurlCommand.includes("hookstream.v1.EventService/GetEvent") && grpcurlCommand.includes('"${HOOKSTREAM_ADDR:-'),
    "copy as grpcurl gives a grpcurl command whose address is $HOOKSTREAM_ADDR (the page cannot know the gRPC port)");
  await shot(page, "06-event-detail");
  await page.screenshot({ path: join(artifacts, "06-event-detail-full.png"), fullPage: true });
  await axe(page, "event detail");

  // Quarantine: the bad request with its reason, field and readable body; reprocess.
  const q = await post(webhooks.bad);
  const q2 = await post(webhooks.bad2);
  await page.goto(`${base}/ui/#/quarantine`);
  const card = page.locator(`article[data-id="${q.quarantine_id}"]`);
  await card.waitFor();
  const reason = await card.locator(".reason").textContent();
  check(reason.length > 10 && reason.includes(q.reason.field), `the quarantined request shows its reason and field: ${reason}`);
  const body = await card.locator("pre").textContent();
  check(body.includes('\n  "meta": {'), "the quarantined body is pretty JSON, not base64");
  await card.getByRole("button", { name: `Reprocess ${q.quarantine_id}` }).click();
  await card.locator(".result").filter({ hasText: "Still failing" }).waitFor();
  check(true, "reprocessing one shows its result (still failing: the normalizer is unchanged)");
  await page.getByRole("button", { name: "Reprocess all" }).click();
  await page.locator("#reprocess-all-result").filter({ hasText: "Done" }).waitFor();
  check((await page.locator("#reprocess-all-result").textContent()).includes("2 still failing"), "reprocess all shows the counts");
  await shot(page, "07-quarantine");
  await axe(page, "quarantine page");

  // Discard, by keyboard: Enter asks first (focus on Cancel), Escape keeps
  // the entry, Enter asks again, Shift+Tab and Enter confirm.
  const card2 = page.locator(`article[data-id="${q2.quarantine_id}"]`);
  await card.waitFor();
  await card2.waitFor();
  const focusedLabel = () => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.textContent);
  await card.getByRole("button", { name: `Discard ${q.quarantine_id}` }).focus();
  await page.keyboard.press("Enter");
  await card.getByText("Discard for good?").waitFor();
  const described = await page.evaluate(() => document.getElementById(document.activeElement?.getAttribute("aria-describedby") ?? "")?.textContent ?? "");
  check(await focusedLabel() === `Cancel discarding ${q.quarantine_id}` && described.startsWith("Discard for good?"),
    "discard asks first, with focus on Cancel (described by the question)");
  check((await quarantined(adminToken)).includes(q.quarantine_id), "asking discards nothing yet");
  await page.keyboard.press("Escape");
  await card.getByText("Discard for good?").waitFor({ state: "hidden" });
  check(await focusedLabel() === `Discard ${q.quarantine_id}` && (await card.count()) === 1, "Escape cancels the discard and keeps the entry");
  await page.keyboard.press("Enter");
  await card.getByRole("button", { name: `Yes, discard ${q.quarantine_id}` }).waitFor();
  await shot(page, "07-quarantine-discard-confirm");
  await axe(page, "quarantine page asking to discard");
  await page.keyboard.press("Shift+Tab");
  check(await focusedLabel() === `Yes, discard ${q.quarantine_id}`, "Shift+Tab reaches the confirming button");
  await page.keyboard.press("Enter");
  await card.waitFor({ state: "detached" });
  check((await page.locator("#discard-result").textContent()) === `Discarded ${q.quarantine_id}.`, "a confirmed discard takes the entry off the page and says so");
  check((await card2.count()) === 1 && (await page.evaluate(() => document.activeElement?.closest("article")?.dataset.id)) === q2.quarantine_id,
    "the other entry stays, and focus moves to it");
  const left = await quarantined(adminToken);
  check(!left.includes(q.quarantine_id) && left.includes(q2.quarantine_id), "the API no longer lists the discarded entry (and still lists the other)");
  await page.reload();
  await card2.waitFor();
  check((await card.count()) === 0, "a reload does not bring the discarded entry back");

  // Sources: URLs and setup steps, masked; an admin reveals.
  await page.goto(`${base}/ui/#/sources`);
  const pd = page.locator('article[data-source="pipedrive"]');
  await pd.waitFor();
  check((await pd.textContent()).includes("/v1/webhooks/pipedrive") && (await pd.textContent()).includes("Settings > Webhooks"),
    "a source shows its webhook URL and where to enter it");
  check(!(await page.content()).includes(secrets[0]), "credentials are masked until revealed");
  check(/\d+ accepted/.test(await pd.locator(".counts").textContent()), "a source shows its request counts");
  await pd.getByRole("button", { name: /Reveal/ }).click();
  await pd.getByText(secrets[0]).waitFor();
  check(true, "an admin reveals a source's credentials");
  await shot(page, "08-sources-admin");
  await axe(page, "sources page");

  // Deliveries: endpoints with health, attempts and dead letters; redrive.
  await page.goto(`${base}/ui/#/deliveries`);
  await page.locator("article[data-endpoint]").first().waitFor();
  const endpointCount = await page.locator("article[data-endpoint]").count();
  check(endpointCount === 3, "the deliveries page lists the endpoints");
  await page.locator("ul.dead li").first().waitFor({ timeout: 30_000 });
  await page.locator("article[data-endpoint] table tbody tr").first().waitFor();
  check(true, "endpoints show their recent attempts and dead letters");
  // The busy endpoint has more attempts than a page holds; its newest failed.
  const busy = page.locator("article[data-endpoint]").filter({ hasText: "Busy (newest attempts failing)" });
  await busy.locator("table tbody tr").first().waitFor();
  const newest = await busy.locator("table tbody tr").first().textContent();
  check(newest.includes("HTTP 500"), `a busy endpoint's newest attempt comes first (got: ${newest})`);
  check((await busy.locator(".badge").textContent()) === "failing", "a busy endpoint whose newest attempts fail is marked failing");
  const deadCount = await page.locator("ul.dead").first().evaluate((ul) => ul.previousElementSibling?.textContent ?? "");
  check(/^(\d+ dead letters?, oldest first|The oldest \d+ shown; there are more)\.$/.test(deadCount),
    `the dead letters say how many are shown and in which order (${JSON.stringify(deadCount)})`);
  await page.getByRole("button", { name: /Redrive all/ }).click();
  await page.getByText(/Redriven: \d+ dead letter/).waitFor();
  check(true, "redrive all hands the dead letters back");
  await shot(page, "09-deliveries");
  await axe(page, "deliveries page");
  await page.context().close();

  // A read token: no secret anywhere, no admin actions.
  const reader = await newPage();
  await login(reader, readToken);
  check((await reader.locator(".scope").textContent()) === "read token", "a read token is shown as such");
  await reader.locator("#events tbody tr").first().waitFor();
  const pages = ["#/events", `#/events/${ids[3]}`, "#/sources", "#/deliveries", "#/quarantine"];
  for (const p of pages) {
    await reader.goto(`${base}/ui/${p}`);
    await reader.locator("main h1").waitFor();
    // Every page says "Loading" until its data is in.
    await reader.waitForFunction(() => !document.querySelector("main").innerText.includes("Loading"));
    const text = await reader.content();
    check(secrets.every((s) => !text.includes(s)), `a read token sees no secret on ${p}`);
  }
  check((await reader.getByText("needs an admin token").count()) > 0, "the quarantine tells a read token it needs admin");
  check((await reader.getByRole("button", { name: /Discard|Reprocess/ }).count()) === 0, "a read token gets no discard or reprocess button");
  const discardDenied = await fetch(`${base}/v1/quarantine/${q2.quarantine_id}`, { method: "DELETE", headers: { authorization: `Bearer ${readToken}` } });
  check(discardDenied.status === 403 && (await quarantined(adminToken)).includes(q2.quarantine_id), "the API refuses a discard to a read token");
  await reader.goto(`${base}/ui/#/sources`);
  await reader.locator('article[data-source="pipedrive"]').waitFor();
  check((await reader.getByRole("button", { name: /Reveal/ }).count()) === 0, "a read token gets no reveal button");
  await shot(reader, "10-sources-read");
  await reader.goto(`${base}/ui/#/deliveries`);
  await reader.locator("article[data-endpoint]").first().waitFor();
  await reader.waitForFunction(() => !document.querySelector("main").innerText.includes("Loading"));
  check((await reader.getByRole("button", { name: /Redrive/ }).count()) === 0, "a read token gets no redrive button");
  // And the API refuses what the UI does not offer.
  const denied = await reader.evaluate(async (src) => {
    const r = await fetch("/hookstream.v1.SourceService/GetSourceCredentials", {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${sessionStorage.getItem("hookstream.token")}` },
      body: JSON.stringify({ source: src }),
    });
    return r.status;
  }, "pipedrive");
  check(denied === 403, "the API refuses credentials to a read token");
  await reader.context().close();

  // Discard's failures, on the entry still there: a server error keeps
  // the entry and says why; an entry discarded meanwhile (by another
  // admin, or aged out) is taken off the page as already gone.
  const admin = await newPage();
  await login(admin, adminToken);
  await admin.goto(`${base}/ui/#/quarantine`);
  const last = admin.locator(`article[data-id="${q2.quarantine_id}"]`);
  await last.waitFor();
  await admin.route("**/hookstream.v1.QuarantineService/DiscardQuarantined", (route) => route.fulfill({
    status: 503, contentType: "application/json",
    body: JSON.stringify({ code: "unavailable", message: "the event log is unavailable; retry" }),
  }));
  await last.getByRole("button", { name: `Discard ${q2.quarantine_id}` }).click();
  await last.getByRole("button", { name: `Yes, discard ${q2.quarantine_id}` }).click();
  await last.locator(".error").filter({ hasText: "Discard failed" }).waitFor();
  check((await last.locator(".error").textContent()) === "Discard failed: the event log is unavailable; retry" &&
    (await last.count()) === 1 && (await admin.evaluate(() => document.activeElement?.getAttribute("aria-label"))) === `Discard ${q2.quarantine_id}`,
    "a failed discard keeps the entry, says why, and gives the focus back to Discard");
  check((await quarantined(adminToken)).includes(q2.quarantine_id), "a failed discard deleted nothing");
  await admin.unroute("**/hookstream.v1.QuarantineService/DiscardQuarantined");
  const gone = await fetch(`${base}/v1/quarantine/${q2.quarantine_id}`, { method: "DELETE", headers: { authorization: `Bearer ${adminToken}` } });
  check(gone.status === 200, `another admin discards the entry through the API (${gone.status})`);
  await last.getByRole("button", { name: `Discard ${q2.quarantine_id}` }).click();
  await last.getByRole("button", { name: `Yes, discard ${q2.quarantine_id}` }).click();
  await last.waitFor({ state: "detached" });
  check((await admin.locator("#discard-result").textContent()) === `${q2.quarantine_id} was already gone.`,
    "discarding an entry already gone takes it off the page and says so");
  await admin.context().close();

  // A link cut short in the middle of an escape still opens the page;
  // logging out forgets the session's filter.
  const cut = await newPage();
  await login(cut, readToken);
  await cut.goto(`${base}/ui/#/events/%E0%A4%A`);
  await cut.locator("main h1").first().waitFor();
  check(true, "a hash that does not decode still shows a page (no blank page, no page error)");
  await cut.goto(`${base}/ui/#/events`);
  await cut.getByLabel("CEL filter").fill("event.source == \"closer\"");
  await cut.keyboard.press("Enter");
  await cut.getByRole("button", { name: "Log out" }).click();
  await cut.getByLabel("API token").fill(readToken);
  await cut.getByRole("button", { name: "Log in" }).click();
  await cut.locator("header.top").waitFor();
  check((await cut.getByLabel("CEL filter").inputValue()) === "", "logging out forgets the filter: the next login starts unfiltered");
  await cut.context().close();

  // A phone.
  const phone = await newPage({ width: 390, height: 844 });
  await login(phone, readToken);
  await phone.locator("#events tbody tr").first().waitFor();
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  check(overflow <= 0, `the events page fits a phone's width (overflow ${overflow}px)`);
  await shot(phone, "11-phone-events");
  await phone.goto(`${base}/ui/#/events/${ids[0]}`);
  await phone.locator("#canonical").waitFor();
  await shot(phone, "12-phone-detail");
  await axe(phone, "events page on a phone");
  await phone.context().close();

  // Back from an event, by the page's link and by the browser's Back, the
  // list is as it was left: the rows "load earlier" added, the scroll
  // position, the live stream; the log is not read again, nor a second
  // stream opened. Closer's smallest conversations, made unique by their
  // time, fill more than two pages (50 events each).
  for (let i = 0; i < 120; i++) {
    await post({ path: webhooks.more.path, headers: webhooks.more.headers,
      body: JSON.stringify({ eventType: "ThreadCreatedEvent", timestamp: 1_700_000_000_000 + i, customer: { id: "c-1", firstName: "Anna" } }) });
  }
  const browse = await newPage();
  const calls = []; // the events API's methods the page called, in order
  browse.on("request", (r) => {
    const m = new URL(r.url()).pathname.match(/^\/hookstream\.v1\.EventService\/(\w+)$/);
    if (m) calls.push(m[1]);
  });
  await login(browse, readToken);
  await browse.locator("#live-status").filter({ hasText: "Live" }).waitFor();
  check((await rows(browse).count()) === 50, "the list starts with one page of events");
  await browse.getByRole("button", { name: "Load earlier" }).click();
  await browse.waitForFunction(() => document.querySelectorAll("#events tbody tr").length === 100);
  check(await browse.getByRole("button", { name: "Load earlier" }).isEnabled(), "load earlier adds a page, and there are more");
  await browse.evaluate(() => window.scrollTo(0, 2000));
  const [scrolled, bottom] = await browse.evaluate(() => [window.scrollY, document.documentElement.scrollHeight - window.innerHeight]);
  // The row halfway down the window, on the second page.
  const row = (await browse.evaluate(() => document.elementFromPoint(640, 400)?.closest("tr")?.dataset.id)) ?? "";
  const index = await rows(browse).evaluateAll((trs, id) => trs.findIndex((tr) => tr.dataset.id === id), row);
  check(index >= 50 && scrolled < bottom, `scrolled to row ${index + 1}, on the second page (${scrolled}px of ${bottom}px)`);
  const keptAsLeft = async (how) => {
    await browse.locator("#live-status").waitFor();
    const shown = await rows(browse).count();
    const y = await browse.evaluate(() => window.scrollY);
    check(shown === 100 && Math.abs(y - scrolled) <= 1,
      `${how}, the list keeps its ${shown} of 100 rows and its scroll position (${y}px of ${scrolled}px)`);
    check((await browse.evaluate(() => document.activeElement?.closest("tr")?.dataset.id)) === row, `${how}, the focus is back on the row opened`);
  };
  const before = calls.length;
  await browse.locator(`#events tbody tr[data-id="${row}"] a`).click();
  await browse.locator("#canonical").waitFor();
  await browse.getByRole("link", { name: "← Events" }).click();
  await keptAsLeft("back by the page's link");
  await browse.locator(`#events tbody tr[data-id="${row}"] a`).click();
  await browse.locator("#canonical").waitFor();
  await browse.goBack();
  await keptAsLeft("back by the browser's Back");
  // An event that arrives while one is open is listed on the kept list's
  // stream, above: the row opened stays where it was on screen.
  const rowTop = () => browse.locator(`#events tbody tr[data-id="${row}"]`).evaluate((tr) => tr.getBoundingClientRect().top);
  const top = await rowTop();
  await browse.locator(`#events tbody tr[data-id="${row}"] a`).click();
  await browse.locator("#canonical").waitFor();
  const newer = await post({ path: webhooks.more.path, headers: webhooks.more.headers,
    body: JSON.stringify({ eventType: "ThreadCreatedEvent", timestamp: Date.now(), customer: { id: "c-2", firstName: "Ben" } }) });
  await browse.waitForTimeout(500); // the stream takes it meanwhile; nothing on the event's page shows that
  await browse.goBack();
  await browse.locator(`#events tbody tr[data-id="${newer.event_id}"]`).waitFor();
  const [topNow, y] = [await rowTop(), await browse.evaluate(() => window.scrollY)];
  check((await rows(browse).first().getAttribute("data-id")) === newer.event_id && (await rows(browse).count()) === 101 &&
    Math.abs(topNow - top) <= 1,
    `an event that arrived while one was open is listed first, and the row opened stays where it was on screen (${topNow}px from the top, was ${top}px; scrolled ${y}px)`);
  const since = calls.slice(before);
  check(since.length === 3 && since.every((c) => c === "GetEvent"),
    `going to an event and back reads that event alone, three times: no list, no second stream (${since.join(", ")})`);
  await browse.context().close();

  check(problems.length === 0, `no CSP violation, page error or request to another origin${problems.length ? `: ${problems.join("; ")}` : ""}`);
  console.log(`inspector: all ${checks.length} checks passed`);
} catch (e) {
  console.error(e?.stack ?? String(e));
  if (problems.length) console.error(`also: ${problems.join("; ")}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
