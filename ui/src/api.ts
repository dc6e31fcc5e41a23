// The API clients: Connect over fetch to the server the page came from,
// with the API token the user logged in with. Nothing is fetched from any
// other origin (the page's Content-Security-Policy allows none).
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EndpointService } from "../../gen/ts/hookstream/v1/endpoint_service_pb.js";
import { EventService } from "../../gen/ts/hookstream/v1/event_service_pb.js";
import { QuarantineService } from "../../gen/ts/hookstream/v1/quarantine_service_pb.js";
import { SourceService } from "../../gen/ts/hookstream/v1/source_service_pb.js";

const tokenKey = "hookstream.token";
const scopeKey = "hookstream.scope";

export type Scope = "read" | "admin";

export interface API {
  events: Client<typeof EventService>;
  quarantine: Client<typeof QuarantineService>;
  sources: Client<typeof SourceService>;
  endpoints: Client<typeof EndpointService>;
  scope: Scope;
}

function clients(token: string, scope: Scope): API {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("Authorization", `Bearer ${token}`);
    return next(req);
  };
  const transport = createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors: [auth] });
  return {
    events: createClient(EventService, transport),
    quarantine: createClient(QuarantineService, transport),
    sources: createClient(SourceService, transport),
    endpoints: createClient(EndpointService, transport),
    scope,
  };
}

/**
 * login checks a token and finds its scope. ListSources needs read; an
 * admin call with an invalid request tells admin (INVALID_ARGUMENT: the
 * scope passed, then validation failed, and nothing was read) from read
 * (PERMISSION_DENIED).
 */
export async function login(token: string): Promise<API> {
  const api = clients(token, "read");
  await api.sources.listSources({});
  let scope: Scope = "read";
  try {
    await api.sources.getSourceCredentials({ source: "" });
    scope = "admin";
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code === Code.InvalidArgument) scope = "admin";
    else if (err.code !== Code.PermissionDenied) throw err;
  }
  sessionStorage.setItem(tokenKey, token);
  sessionStorage.setItem(scopeKey, scope);
  return clients(token, scope);
}

/** restore returns the clients of the session's token, if it has one. */
export function restore(): API | null {
  const token = sessionStorage.getItem(tokenKey);
  const scope = sessionStorage.getItem(scopeKey);
  if (!token || (scope !== "read" && scope !== "admin")) return null;
  return clients(token, scope);
}

/** logout forgets the session: its token and what it set (the filter). */
export function logout(): void {
  for (const key of Object.keys(sessionStorage)) {
    if (key.startsWith("hookstream.")) sessionStorage.removeItem(key);
  }
}

/** message is what the server said, without Connect's "[code]" prefix. */
export function message(e: unknown): string {
  if (e instanceof Error && e.name === "AbortError") return "cancelled";
  const err = ConnectError.from(e);
  return err.rawMessage || Code[err.code];
}

export function code(e: unknown): Code {
  return ConnectError.from(e).code;
}

export { Code };
