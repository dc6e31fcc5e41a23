// @hookstream/client/node: the same typed clients for Node.js, over gRPC
// (HTTP/2, the server's gRPC port) or the Connect protocol (HTTP/1.1, the
// server's HTTP port).
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { checkOptions, clientsFor, type HookstreamClient, type HookstreamClientOptions } from "./client.js";

export * from "./generated.js";
export type { HookstreamClient, HookstreamClientOptions, HookstreamTransport } from "./client.js";
export { Code, ConnectError } from "@connectrpc/connect";
export { errorInfo, type ErrorInfo } from "./errors.js";

/**
 * createHookstreamClient returns a typed client for every service of
 * hookstream.v1 that sends the API token with each call. With transport
 * "grpc", baseUrl is the gRPC port (`grpc.addr`, default
 * http://127.0.0.1:9090); with "connect" (the default), the HTTP port
 * (`http.addr`, default http://127.0.0.1:8080). Use https:// for a port
 * that serves TLS.
 */
export function createHookstreamClient(options: HookstreamClientOptions): HookstreamClient {
  const opts = checkOptions(options);
  if (opts.transport === "grpc") {
    return clientsFor(createGrpcTransport({ baseUrl: opts.baseUrl, interceptors: opts.interceptors }));
  }
  // HTTP/1.1: the HTTP port serves HTTP/2 only with TLS, and Connect
  // streams (Subscribe) work over either.
  return clientsFor(
    createConnectTransport({ baseUrl: opts.baseUrl, httpVersion: "1.1", interceptors: opts.interceptors }),
  );
}
