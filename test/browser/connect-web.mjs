// The browser path of the Connect protocol, for TestConnectWebFromNode in
// test/system: @connectrpc/connect-web's fetch transport with the generated
// TypeScript clients (gen/ts, compiled to JavaScript by the test), a CORS
// preflight first, and every request sent with an Origin as a browser would.
// Node's fetch does not enforce CORS, so this script checks what a browser
// would: the preflight's answer and Access-Control-Allow-Origin on each reply.
//
// Usage: node test/browser/connect-web.mjs <baseUrl> <apiToken> <origin> <compiled gen/ts dir>
// It prints one JSON line: {"preflight": {...}, "ids": [...], "streamed": id,
// "anonymous": <Connect code name>} or {"error": "..."}.
import { createClient, ConnectError, Code } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [baseUrl, token, origin, genDir] = process.argv.slice(2);
const { EventService, StartPosition } = await import(pathToFileURL(join(genDir, "hookstream/v1/event_service_pb.js")).href);

const fail = (msg) => {
  console.log(JSON.stringify({ error: msg }));
  process.exit(1);
};

// The preflight a browser sends before a Connect POST with a token.
const wanted = ["authorization", "content-type", "connect-protocol-version", "connect-timeout-ms"];
const pre = await fetch(`${baseUrl}/hookstream.v1.EventService/ListEvents`, {
  method: "OPTIONS",
  headers: {
    Origin: origin,
    "Access-Control-Request-Method": "POST",
    // Sorted and lower case, as browsers send it.
    "Access-Control-Request-Headers": [...wanted].sort().join(","),
  },
});
const allowOrigin = pre.headers.get("access-control-allow-origin");
const allowHeaders = (pre.headers.get("access-control-allow-headers") ?? "").toLowerCase();
const allowMethods = (pre.headers.get("access-control-allow-methods") ?? "").toUpperCase();
if (pre.status >= 300 || allowOrigin !== origin || !allowMethods.includes("POST") || !wanted.every((h) => allowHeaders.includes(h))) {
  fail(`preflight refused: ${pre.status} origin=${allowOrigin} methods=${allowMethods} headers=${allowHeaders}`);
}

// fetch as a browser on origin would do it: Origin sent, and a reply
// without a matching Access-Control-Allow-Origin is unreadable.
const browserFetch = async (input, init) => {
  const headers = new Headers(init?.headers);
  headers.set("Origin", origin);
  const res = await fetch(input, { ...init, headers });
  if (res.headers.get("access-control-allow-origin") !== origin) {
    throw new Error(`CORS: reply without Access-Control-Allow-Origin ${origin}`);
  }
  return res;
};

const transport = (withToken) =>
  createConnectTransport({
    baseUrl,
    fetch: browserFetch,
    interceptors: withToken ? [(next) => (req) => (req.header.set("Authorization", `Bearer ${token}`), next(req))] : [],
  });

try {
  const client = createClient(EventService, transport(true));
  const page = await client.listEvents({});
  const ids = page.events.map((e) => e.id);

  let streamed = "";
  const ctl = new AbortController();
  for await (const msg of client.subscribe({ start: { case: "position", value: StartPosition.BEGINNING } }, { signal: ctl.signal })) {
    if (msg.message.case === "delivery") {
      streamed = msg.message.value.event?.id ?? "";
      ctl.abort();
      break;
    }
  }

  let anonymous = "";
  try {
    await createClient(EventService, transport(false)).listEvents({});
  } catch (e) {
    anonymous = Code[ConnectError.from(e).code];
  }
  console.log(JSON.stringify({ preflight: { allowOrigin, allowHeaders }, ids, streamed, anonymous }));
} catch (e) {
  fail(String(e?.stack ?? e));
}
