// @hookstream/client: typed clients for the hookstream API that run
// anywhere fetch does (browsers, Node.js, Deno, Bun), over the Connect
// protocol on the server's HTTP port. For gRPC from Node.js, import
// createHookstreamClient from "@hookstream/client/node" instead.
import { createConnectTransport } from "@connectrpc/connect-web";
import { checkOptions, clientsFor, type HookstreamClient, type HookstreamClientOptions } from "./client.js";

export * from "./generated.js";
export type { HookstreamClient, HookstreamClientOptions, HookstreamTransport } from "./client.js";
export { Code, ConnectError } from "@connectrpc/connect";
export { errorInfo, type ErrorInfo } from "./errors.js";

/** Options of the fetch-based createHookstreamClient. */
export interface HookstreamWebClientOptions extends HookstreamClientOptions {
  /** Only "connect": browsers cannot speak gRPC. */
  transport?: "connect";
  /** The fetch to use; by default globalThis.fetch. */
  fetch?: typeof globalThis.fetch;
}

/**
 * createHookstreamClient returns a typed client for every service of
 * hookstream.v1 that sends the API token with each call, over the Connect
 * protocol with fetch. baseUrl is the server's HTTP port; a browser on
 * another origin needs it in the server's `http.cors.allowed_origins`.
 */
export function createHookstreamClient(options: HookstreamWebClientOptions): HookstreamClient {
  const opts = checkOptions(options);
  if (opts.transport !== "connect") {
    throw new TypeError(
      'createHookstreamClient: transport "grpc" needs Node.js: import { createHookstreamClient } from "@hookstream/client/node"',
    );
  }
  return clientsFor(
    createConnectTransport({ baseUrl: opts.baseUrl, interceptors: opts.interceptors, fetch: options.fetch }),
  );
}
