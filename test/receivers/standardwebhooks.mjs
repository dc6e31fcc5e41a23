// A webhook receiver that checks hookstream's signatures with the official
// Standard Webhooks library, for TestStandardWebhooksInterop in
// service/delivery/webhook. Our own Verify agreeing with our own Sign proves
// little; this library agreeing is what a user's receiver will do.
//
// Usage: SECRETS=whsec_a,whsec_b node test/receivers/standardwebhooks.mjs
//
// It listens on 127.0.0.1, on a port of the system's choosing, and prints
// JSON lines on stdout: first {"port": N}, then one per webhook:
// {"id": "<webhook-id>", "verified": true|false, "secret": <index of the
// secret that verified, or -1>, "error": "<why not>"}. A verified webhook
// gets 204, any other 401. POST /_secrets with {"secrets": [...]} replaces
// the secrets (204), so one receiver serves a whole rotation scenario; it
// prints nothing. With EXIT_WITH_STDIN=1 it exits when stdin closes, so a
// test that dies does not leave it running.
import http from "node:http";
import { Webhook } from "standardwebhooks";

let secrets = (process.env.SECRETS ?? "")
  .split(",")
  .map((s) => s.trim())
  .filter((s) => s !== "");

function print(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

// verify tries each secret in turn, the way a receiver in the middle of a
// rotation does, and returns the index of the first that verifies.
function verify(body, headers) {
  if (secrets.length === 0) {
    return { secret: -1, error: "no secrets configured" };
  }
  const errors = [];
  for (const [i, secret] of secrets.entries()) {
    try {
      new Webhook(secret).verify(body, headers);
      return { secret: i, error: "" };
    } catch (e) {
      errors.push(`secret ${i}: ${e.message}`);
    }
  }
  return { secret: -1, error: errors.join("; ") };
}

const server = http.createServer(async (req, res) => {
  let body;
  try {
    body = await readBody(req);
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (req.method === "POST" && req.url === "/_secrets") {
    try {
      const parsed = JSON.parse(body.toString("utf8"));
      if (!Array.isArray(parsed.secrets) || !parsed.secrets.every((s) => typeof s === "string")) {
        throw new Error('want {"secrets": ["whsec_...", ...]}');
      }
      secrets = parsed.secrets;
      res.writeHead(204).end();
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" }).end(e.message);
    }
    return;
  }
  const { secret, error } = verify(body, req.headers);
  print({ id: req.headers["webhook-id"] ?? "", verified: secret >= 0, secret, error });
  res.writeHead(secret >= 0 ? 204 : 401).end();
});

server.listen(0, "127.0.0.1", () => {
  print({ port: server.address().port });
});

if (process.env.EXIT_WITH_STDIN === "1") {
  process.stdin.on("end", () => process.exit(0));
  process.stdin.resume();
}
