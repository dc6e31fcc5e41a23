// Drives hookstream's Pipedrive-compatible webhooks API with Pipedrive's
// official Node SDK (the `pipedrive` npm package), for
// TestPipedriveCompatWithSDK in test/system: the SDK's own WebhooksApi,
// pointed at hookstream by its basePath and nothing else.
//
// Usage: node test/pipedrive/sdk.mjs <basePath> <apiToken> <command> [json]
//   add '{"subscription_url": ..., "event_action": ..., ...}'
//   list
//   delete <id>
// It prints one JSON line: {"status": <HTTP status>, "body": <what the SDK
// resolved to, or rejected with>}.
import { v1 } from "pipedrive";

const [basePath, apiKey, command, arg] = process.argv.slice(2);
const config = new v1.Configuration({ apiKey, basePath });
const api = new v1.WebhooksApi(config);

// The SDK resolves to the response body and rejects with the error body;
// the test wants the HTTP status too, so this takes it before the SDK's
// own interceptor turns the response into its body.
let status = 0;
api.axios.interceptors.response.handlers.unshift({
  fulfilled: (r) => {
    status = r.status;
    return r;
  },
  rejected: (e) => {
    status = e.response?.status ?? 0;
    return Promise.reject(e);
  },
});

function print(status, body) {
  process.stdout.write(`${JSON.stringify({ status, body })}\n`);
}

try {
  let res;
  switch (command) {
    case "add":
      res = await api.addWebhook({ AddWebhookRequest: JSON.parse(arg) });
      break;
    case "list":
      res = await api.getWebhooks();
      break;
    case "delete":
      res = await api.deleteWebhook({ id: Number(arg) });
      break;
    default:
      throw new Error(`unknown command ${command}`);
  }
  print(status, res);
} catch (e) {
  if (status === 0) {
    process.stderr.write(`${e.stack ?? JSON.stringify(e)}\n`);
    process.exit(2);
  }
  print(status, e);
}
