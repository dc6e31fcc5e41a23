#!/usr/bin/env node
// ts-subscriber prints the hookstream events that match a CEL filter, one
// JSON line each on stdout, and stores each event's cursor in a file once
// the line is out. Started again, it resumes after the stored cursor: no
// event is missed and none is printed twice. When the stream breaks (the
// server restarts, the network drops) it reconnects from the same cursor.
//
//   HOOKSTREAM_TOKEN=… node dist/main.js --transport grpc --addr http://127.0.0.1:9090 \
//     --filter 'event.source == "pipedrive" && event.type.startsWith("deal.")' --cursor-file deals.cursor
//
// Flags (each with an environment variable as its default):
//   --transport grpc|connect  HOOKSTREAM_TRANSPORT, default grpc
//   --addr URL                HOOKSTREAM_ADDR: the gRPC port for grpc (default 127.0.0.1:9090),
//                             the HTTP port for connect (default 127.0.0.1:8080)
//   --filter CEL              HOOKSTREAM_FILTER, default "" (every event)
//   --cursor-file FILE        HOOKSTREAM_CURSOR_FILE, default hookstream.cursor
//   --from now|beginning      where to start when there is no stored cursor, default now
// The API token (scope read) comes from HOOKSTREAM_TOKEN only, so it does
// not show in the process list.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  StartPosition,
  Vendor,
  createHookstreamClient,
  type Event,
  type HookstreamTransport,
  type SubscribeRequestSchema,
} from "@hookstream/client/node";
import type { MessageInitShape } from "@bufbuild/protobuf";

const { values: flags } = parseArgs({
  options: {
    transport: { type: "string", default: process.env.HOOKSTREAM_TRANSPORT || "grpc" },
    addr: { type: "string", default: process.env.HOOKSTREAM_ADDR || "" },
    filter: { type: "string", default: process.env.HOOKSTREAM_FILTER || "" },
    "cursor-file": { type: "string", default: process.env.HOOKSTREAM_CURSOR_FILE || "hookstream.cursor" },
    from: { type: "string", default: "now" },
  },
  strict: true,
});

function usage(msg: string): never {
  console.error(`ts-subscriber: ${msg}`);
  process.exit(2);
}

if (flags.transport !== "grpc" && flags.transport !== "connect") {
  usage(`--transport must be grpc or connect, not ${JSON.stringify(flags.transport)}`);
}
if (flags.from !== "now" && flags.from !== "beginning") {
  usage(`--from must be now or beginning, not ${JSON.stringify(flags.from)}`);
}
const transport: HookstreamTransport = flags.transport;
const defaultAddr = transport === "grpc" ? "127.0.0.1:9090" : "127.0.0.1:8080";
let baseUrl = flags.addr || defaultAddr;
if (!baseUrl.includes("://")) {
  baseUrl = `http://${baseUrl}`; // HOOKSTREAM_ADDR as the CLI takes it: host:port
}
const token = process.env.HOOKSTREAM_TOKEN ?? "";
if (token === "") {
  usage("set HOOKSTREAM_TOKEN to an API token (scope read)");
}
const cursorFile = flags["cursor-file"];

const client = createHookstreamClient({ baseUrl, token, transport });

// The stored cursor, if a previous run left one.
function loadCursor(): string {
  try {
    return readFileSync(cursorFile, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "";
    throw err;
  }
}

// storeCursor replaces the file in one step, so a crash leaves the old
// cursor or the new one, never half of one.
function storeCursor(cursor: string): void {
  writeFileSync(`${cursorFile}.tmp`, `${cursor}\n`);
  renameSync(`${cursorFile}.tmp`, cursorFile);
}

function iso(ts: Timestamp | undefined): string | undefined {
  return ts ? timestampDate(ts).toISOString() : undefined;
}

// What the vendor's own payload says, read from its typed copy.
function vendorDetail(ev: Event): Record<string, string | undefined> {
  switch (ev.payload.case) {
    case "pipedriveV2":
      return { deliveryId: ev.payload.value.meta?.id, entityId: ev.payload.value.meta?.entityId };
    case "pipedriveV1":
      return { deliveryId: ev.payload.value.meta?.id, event: ev.payload.value.event };
    case "closer":
      return { eventType: ev.payload.value.eventType, customer: ev.payload.value.customer?.email };
    case "clinchpad":
      return { activityId: ev.payload.value.activity?.id, activity: ev.payload.value.activity?.type };
    default:
      return {};
  }
}

function print(ev: Event, cursor: string): void {
  const line = {
    cursor,
    id: ev.id,
    source: ev.source,
    vendor: Vendor[ev.vendor],
    type: ev.type,
    subject: ev.subject && { kind: ev.subject.kind, id: ev.subject.id, name: ev.subject.name },
    occurredAt: iso(ev.occurredAt),
    receivedAt: iso(ev.receivedAt),
    payload: ev.payload.case,
    ...vendorDetail(ev),
  };
  console.log(JSON.stringify(line));
}

// Errors a retry may get past; any other (a bad filter, a wrong token)
// ends the program.
const transient = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted]);

const stop = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => stop.abort());
}

let cursor = loadCursor();
if (cursor !== "") {
  console.error(`ts-subscriber: resuming after cursor ${cursor} (${cursorFile})`);
} else {
  console.error(`ts-subscriber: no stored cursor in ${cursorFile}, starting from ${flags.from}`);
}

// Started from now with no cursor yet, a stream that breaks before its
// first event is reopened at the time the first one was opened, so the
// events stored in between are not missed.
let openedAt: Date | undefined;

let backoff = 250;
while (!stop.signal.aborted) {
  let start: MessageInitShape<typeof SubscribeRequestSchema>["start"];
  if (cursor !== "") {
    start = { case: "afterCursor", value: cursor };
  } else if (flags.from === "beginning") {
    start = { case: "position", value: StartPosition.BEGINNING };
  } else if (openedAt) {
    start = { case: "startTime", value: timestampFromDate(openedAt) };
  } else {
    openedAt = new Date();
    start = { case: "position", value: StartPosition.NOW };
  }
  const request: MessageInitShape<typeof SubscribeRequestSchema> = { filter: flags.filter, start };
  try {
    for await (const res of client.events.subscribe(request, { signal: stop.signal })) {
      backoff = 250;
      if (res.message.case !== "delivery") continue; // a heartbeat
      const { event, cursor: next } = res.message.value;
      if (event) print(event, next);
      storeCursor(next);
      cursor = next;
    }
    console.error("ts-subscriber: the server ended the stream; reconnecting");
  } catch (err) {
    if (stop.signal.aborted) break;
    const e = ConnectError.from(err);
    if (!transient.has(e.code)) {
      console.error(`ts-subscriber: ${Code[e.code]}: ${e.rawMessage}`);
      process.exit(1);
    }
    console.error(`ts-subscriber: stream broke (${Code[e.code]}: ${e.rawMessage}); retrying in ${backoff} ms`);
  }
  await sleep(backoff, undefined, { signal: stop.signal }).catch(() => {});
  backoff = Math.min(backoff * 2, 10_000);
}
console.error(`ts-subscriber: stopped${cursor ? ` after cursor ${cursor}` : ""}`);
