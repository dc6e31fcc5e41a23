// The TypeScript client (@hookstream/client, built into clients/ts/dist)
// and its example (examples/ts-subscriber, built into dist) against a real
// server: TestTypeScriptClient in test/system starts one on loopback and
// runs this file with `node --test`, passing the addresses and credentials
// in the environment. Webhooks are posted as a vendor would, with the
// samples `hookstream send --example` uses.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import * as web from "@hookstream/client";
import * as node from "@hookstream/client/node";

const root = fileURLToPath(new URL("../../", import.meta.url));

function env(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run this file through TestTypeScriptClient (go test ./test/system -run TestTypeScriptClient)`);
  }
  return v;
}

const grpcUrl = env("HOOKSTREAM_GRPC_URL");
const httpUrl = env("HOOKSTREAM_HTTP_URL");
const readToken = env("HOOKSTREAM_READ_TOKEN");
const adminToken = env("HOOKSTREAM_ADMIN_TOKEN");
const pipedriveAuth = env("HOOKSTREAM_PIPEDRIVE_BASIC"); // user:password of source "pipedrive"
const closerToken = env("HOOKSTREAM_CLOSER_TOKEN");

const sample = (name) => JSON.parse(readFileSync(join(root, "cmd/hookstream/examples", `${name}.json`), "utf8"));

async function postWebhook(source, body, headers) {
  const res = await fetch(`${httpUrl}/v1/webhooks/${source}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const answer = await res.json();
  assert.equal(res.status, 200, `POST /v1/webhooks/${source}: ${JSON.stringify(answer)}`);
  assert.ok(answer.event_id, `POST /v1/webhooks/${source} answered without event_id: ${JSON.stringify(answer)}`);
  return answer.event_id;
}

// A Pipedrive deal change (webhooks v2) about deal dealId, made unique by a
// fresh delivery id; what the event built from it must carry.
async function postDeal(dealId) {
  const body = sample("pipedrive.deal.change");
  const deliveryId = randomUUID();
  const occurredAt = new Date().toISOString();
  Object.assign(body.meta, { id: deliveryId, entity_id: dealId, timestamp: occurredAt });
  body.data.id = Number(dealId);
  const id = await postWebhook("pipedrive", body, {
    authorization: `Basic ${Buffer.from(pipedriveAuth).toString("base64")}`,
  });
  return { id, dealId, deliveryId, occurredAt };
}

// A Closer conversation: an event no deal filter matches.
function postCloser() {
  const body = sample("closer.created");
  body.timestamp = Date.now() + Math.floor(Math.random() * 1000);
  return postWebhook("closer", body, { "x-hookstream-token": closerToken });
}

let deals = 0;
// A deal id no other test uses, so each test's filter sees only its events.
const newDealId = () => String(process.pid * 1000 + ++deals);
const dealFilter = (dealId) =>
  `event.vendor == hookstream.v1.Vendor.VENDOR_PIPEDRIVE && event.type.startsWith("deal.") && event.subject.id == "${dealId}"`;

// The typed event as the generated types describe it.
function assertDealEvent(ev, want) {
  assert.equal(ev.id, want.id);
  assert.equal(ev.source, "pipedrive");
  assert.equal(ev.vendor, node.Vendor.PIPEDRIVE);
  assert.equal(ev.type, "deal.updated");
  assert.equal(ev.subject?.kind, "deal");
  assert.equal(ev.subject?.id, want.dealId);
  assert.equal(ev.payload.case, "pipedriveV2");
  assert.equal(ev.payload.value.meta?.id, want.deliveryId);
  assert.equal(ev.occurredAt?.seconds, BigInt(Math.floor(Date.parse(want.occurredAt) / 1000)));
}

// Connect error code of a failed call.
async function codeOf(promise) {
  try {
    await promise;
  } catch (e) {
    return node.Code[node.ConnectError.from(e).code];
  }
  return "OK";
}

test("createHookstreamClient checks its options", () => {
  for (const create of [web.createHookstreamClient, node.createHookstreamClient]) {
    assert.throws(() => create({ token: readToken }), /baseUrl is required/);
    assert.throws(() => create({ baseUrl: "127.0.0.1:8080", token: readToken }), /baseUrl must be an http:\/\/ or https:\/\/ URL/);
    assert.throws(() => create({ baseUrl: httpUrl }), /token is required/);
    assert.throws(() => create({ baseUrl: httpUrl, token: "" }), /token is required/);
    assert.throws(() => create({ baseUrl: httpUrl, token: readToken, transport: "http" }), /transport must be "grpc" or "connect"/);
  }
  assert.throws(() => web.createHookstreamClient({ baseUrl: grpcUrl, token: readToken, transport: "grpc" }), /@hookstream\/client\/node/);
  // Both entry points export the same generated code.
  assert.equal(web.EventService, node.EventService);
});

const transports = [
  { name: "node, gRPC (gRPC port)", create: (token) => node.createHookstreamClient({ baseUrl: grpcUrl, token, transport: "grpc" }) },
  { name: "node, Connect (HTTP port)", create: (token) => node.createHookstreamClient({ baseUrl: httpUrl, token, transport: "connect" }) },
  { name: "browser entry, Connect over fetch (HTTP port)", create: (token) => web.createHookstreamClient({ baseUrl: httpUrl, token }) },
];

for (const { name, create } of transports) {
  test(`client: ${name}`, { timeout: 60_000 }, async () => {
    const deal = await postDeal(newDealId());
    await postCloser();
    const filter = dealFilter(deal.dealId);
    const client = create(readToken);

    const page = await client.events.listEvents({ filter });
    assert.equal(page.events.length, 1, `ListEvents: ${page.events.map((e) => e.id)}`);
    assertDealEvent(page.events[0], deal);

    const one = await client.events.getEvent({ id: deal.id });
    assertDealEvent(one.event, deal);
    assert.ok(one.cursor);

    // Subscribe from the beginning: the one matching event, then the
    // stream stays open (heartbeats) until aborted.
    const ctl = new AbortController();
    const got = [];
    for await (const res of client.events.subscribe({ filter, start: { case: "position", value: node.StartPosition.BEGINNING } }, { signal: ctl.signal })) {
      if (res.message.case === "delivery") {
        got.push(res.message.value);
        assert.equal(res.message.value.cursor, one.cursor);
      } else if (res.message.case === "heartbeat" && got.length > 0) {
        ctl.abort(); // caught up: nothing more matched
        break;
      }
    }
    assert.equal(got.length, 1);
    assertDealEvent(got[0].event, deal);

    // The server's errors arrive as Connect codes, whatever the transport.
    assert.equal(await codeOf(create("not-a-token").events.listEvents({})), "Unauthenticated");
    assert.equal(await codeOf(client.quarantine.listQuarantined({})), "PermissionDenied");
    assert.equal(await codeOf(create(adminToken).quarantine.listQuarantined({})), "OK");
    const bad = client.events.subscribe({ filter: "event.nope == 1" });
    assert.equal(await codeOf((async () => { for await (const _ of bad); })()), "InvalidArgument");

    // errorInfo reads the reason and its metadata (google.rpc.ErrorInfo).
    const past = client.events.subscribe({ start: { case: "afterCursor", value: "999999999" } });
    const err = await (async () => { try { for await (const _ of past); } catch (e) { return e; } })();
    const info = node.errorInfo(err);
    assert.equal(info?.reason, "CURSOR_PAST_END");
    assert.equal(info?.domain, "hookstream.dev");
    assert.equal(info?.metadata.cursor, "999999999");
    assert.match(info?.metadata.last_cursor ?? "", /^\d+$/);
    assert.equal(web.errorInfo(err)?.reason, "CURSOR_PAST_END");
    assert.equal(node.errorInfo(new Error("not from a server")), undefined);
  });
}

// subscriber runs the example program; its stdout is one JSON event per line.
function subscriber(args) {
  const proc = spawn(process.execPath, [join(root, "examples/ts-subscriber/dist/main.js"), ...args], {
    env: { ...process.env, HOOKSTREAM_TOKEN: readToken, HOOKSTREAM_ADDR: "", HOOKSTREAM_FILTER: "", HOOKSTREAM_TRANSPORT: "" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr.on("data", (b) => (stderr += b));
  const lines = [];
  const waiting = [];
  createInterface({ input: proc.stdout }).on("line", (l) => (waiting.length ? waiting.shift()(l) : lines.push(l)));
  // "close" comes after stdout has ended, so every line printed is in by then.
  const exited = new Promise((resolve) => proc.on("close", (code, signal) => resolve(code ?? signal)));
  return {
    stderr: () => stderr,
    // The next event printed, within 20 s.
    async next() {
      const line =
        lines.shift() ??
        (await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no event from the example within 20 s; its stderr:\n${stderr}`)), 20_000);
          waiting.push((l) => (clearTimeout(timer), resolve(l)));
          exited.then((code) => reject(new Error(`the example exited (${code}); its stderr:\n${stderr}`)));
        }));
      return JSON.parse(line);
    },
    // SIGTERM, as a process manager stops it; resolves to the exit code.
    async stop() {
      proc.kill("SIGTERM");
      let timer;
      const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r("still running 10 s after SIGTERM"), 10_000)))]);
      clearTimeout(timer);
      if (code !== 0) proc.kill("SIGKILL");
      return code;
    },
    unread: () => lines,
  };
}

// The printed line is the event as the example read it from its typed copy.
function assertPrinted(line, want) {
  assert.equal(line.id, want.id, `printed ${JSON.stringify(line)}, want event ${want.id}`);
  assert.equal(line.source, "pipedrive");
  assert.equal(line.vendor, "PIPEDRIVE");
  assert.equal(line.type, "deal.updated");
  assert.deepEqual([line.subject?.kind, line.subject?.id], ["deal", want.dealId]);
  assert.equal(line.payload, "pipedriveV2");
  assert.equal(line.deliveryId, want.deliveryId);
  assert.equal(line.entityId, want.dealId);
  assert.equal(line.occurredAt, want.occurredAt);
  assert.ok(line.cursor, "printed without a cursor");
}

for (const { transport, url } of [
  { transport: "grpc", url: () => grpcUrl },
  { transport: "connect", url: () => httpUrl },
]) {
  test(`examples/ts-subscriber over ${transport}: filter, cursor file, resume`, { timeout: 120_000 }, async () => {
    const dealId = newDealId();
    const cursorFile = join(mkdtempSync(join(tmpdir(), "ts-subscriber-")), "cursor");
    const args = ["--transport", transport, "--addr", url(), "--filter", dealFilter(dealId), "--cursor-file", cursorFile, "--from", "beginning"];
    const posted = [];

    // Before the first start: two matching events among others.
    posted.push(await postDeal(dealId));
    await postCloser();
    await postDeal(newDealId());
    posted.push(await postDeal(dealId));

    let sub = subscriber(args);
    const printed = [await sub.next(), await sub.next()];
    // While it runs.
    await postCloser();
    posted.push(await postDeal(dealId));
    printed.push(await sub.next());
    assert.equal(await sub.stop(), 0, `exit after SIGTERM; stderr:\n${sub.stderr()}`);
    assert.deepEqual(sub.unread(), [], "events printed after the last expected one");
    assert.equal(readFileSync(cursorFile, "utf8").trim(), printed[2].cursor, "the cursor file holds the last event's cursor");

    // While it is stopped; then it resumes after the stored cursor (its
    // --from beginning no longer applies): the two missed events and
    // nothing printed before.
    posted.push(await postDeal(dealId));
    await postDeal(newDealId());
    posted.push(await postDeal(dealId));
    sub = subscriber(args);
    printed.push(await sub.next(), await sub.next());
    posted.push(await postDeal(dealId));
    printed.push(await sub.next());
    assert.equal(await sub.stop(), 0, `exit after SIGTERM; stderr:\n${sub.stderr()}`);
    assert.match(sub.stderr(), new RegExp(`resuming after cursor ${printed[2].cursor}\\b`));
    assert.deepEqual(sub.unread(), [], "events printed after the last expected one");

    assert.equal(printed.length, posted.length);
    printed.forEach((line, i) => assertPrinted(line, posted[i]));
    assert.equal(new Set(printed.map((l) => l.cursor)).size, printed.length, "cursors repeat");
    assert.equal(readFileSync(cursorFile, "utf8").trim(), printed.at(-1).cursor);
  });
}
