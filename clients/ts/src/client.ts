// The part of createHookstreamClient that does not depend on the platform:
// option checks, the bearer token, and one typed client per service.
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { AdminService } from "./gen/hookstream/v1/admin_service_pb.js";
import { EndpointService } from "./gen/hookstream/v1/endpoint_service_pb.js";
import { EventService } from "./gen/hookstream/v1/event_service_pb.js";
import { IngestService } from "./gen/hookstream/v1/ingest_service_pb.js";
import { QuarantineService } from "./gen/hookstream/v1/quarantine_service_pb.js";
import { SourceService } from "./gen/hookstream/v1/source_service_pb.js";

/** How the client reaches the server. */
export type HookstreamTransport = "grpc" | "connect";

/** Options of createHookstreamClient. */
export interface HookstreamClientOptions {
  /**
   * The server's address as an http:// or https:// URL. The "connect"
   * transport talks to the HTTP port (`http.addr`, default
   * http://127.0.0.1:8080), the "grpc" transport to the gRPC port
   * (`grpc.addr`, default http://127.0.0.1:9090).
   */
  baseUrl: string;
  /**
   * An API token from the server's `api.tokens`, sent as
   * `authorization: Bearer <token>` on every call. Scope `read` may use
   * `events`; `admin` may use every service.
   */
  token: string;
  /**
   * "connect" (the default) is the Connect protocol, over fetch in browsers
   * and over HTTP/1.1 in Node.js; "grpc" is gRPC over HTTP/2 and needs
   * `@hookstream/client/node`.
   */
  transport?: HookstreamTransport;
  /** More interceptors, run after the one that adds the token. */
  interceptors?: Interceptor[];
}

/** One typed client per hookstream.v1 service, sharing one transport. */
export interface HookstreamClient {
  /** Subscribe (server stream), ListEvents and GetEvent; scope `read`. */
  events: Client<typeof EventService>;
  /** Endpoints that events are pushed to as signed webhooks; scope `admin`. */
  endpoints: Client<typeof EndpointService>;
  /** Requests that could not be normalized; scope `admin`. */
  quarantine: Client<typeof QuarantineService>;
  /** Re-normalizing stored history; scope `admin`. */
  admin: Client<typeof AdminService>;
  /**
   * The configured sources: ListSources (scope `read`, credentials masked)
   * and GetSourceCredentials (scope `admin`).
   */
  sources: Client<typeof SourceService>;
  /**
   * Webhooks posted as RPCs. It needs no API token but the source's own
   * credentials in the request's `headers` or `params`.
   */
  ingest: Client<typeof IngestService>;
  /** The transport the clients share, for createClient with it. */
  transport: Transport;
}

/** The options after the checks, with the token interceptor prepended. */
export interface CheckedOptions {
  baseUrl: string;
  transport: HookstreamTransport;
  interceptors: Interceptor[];
}

/**
 * checkOptions fails with a TypeError naming what is wrong, before any
 * call, instead of a network error on the first one.
 */
export function checkOptions(options: HookstreamClientOptions | undefined): CheckedOptions {
  const fail = (msg: string): never => {
    throw new TypeError(`createHookstreamClient: ${msg}`);
  };
  if (options === null || typeof options !== "object") {
    fail("options are required: { baseUrl, token, transport }");
  }
  const { baseUrl, token, transport = "connect", interceptors = [] } = options as HookstreamClientOptions;
  if (typeof baseUrl !== "string" || baseUrl === "") {
    fail('baseUrl is required, e.g. "http://127.0.0.1:8080" (HTTP port, transport "connect") or "http://127.0.0.1:9090" (gRPC port, transport "grpc")');
  }
  let url: URL | undefined;
  try {
    url = new URL(baseUrl);
  } catch {
    // reported below
  }
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    fail(`baseUrl must be an http:// or https:// URL such as "http://127.0.0.1:8080", got ${JSON.stringify(baseUrl)}`);
  }
  if (typeof token !== "string" || token === "") {
    fail("token is required: an API token from the server's api.tokens (scope read or admin)");
  }
  if (/[\r\n]/.test(token) || token.trim() !== token) {
    fail("token must not contain line breaks or surrounding spaces");
  }
  if (transport !== "grpc" && transport !== "connect") {
    fail(`transport must be "grpc" or "connect", got ${JSON.stringify(transport)}`);
  }
  if (!Array.isArray(interceptors)) {
    fail("interceptors must be an array");
  }
  const bearer: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return { baseUrl: baseUrl.replace(/\/+$/, ""), transport, interceptors: [bearer, ...interceptors] };
}

/** clientsFor makes one client per service on transport. */
export function clientsFor(transport: Transport): HookstreamClient {
  return {
    events: createClient(EventService, transport),
    endpoints: createClient(EndpointService, transport),
    quarantine: createClient(QuarantineService, transport),
    admin: createClient(AdminService, transport),
    sources: createClient(SourceService, transport),
    ingest: createClient(IngestService, transport),
    transport,
  };
}
