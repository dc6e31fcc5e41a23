// The machine-readable part of hookstream's errors: every error the server
// makes carries a google.rpc.ErrorInfo (domain "hookstream.dev") whose
// reason is stable (README, "Errors"). Connect hands it over undecoded;
// errorInfo reads it without the google.rpc types.
import { ConnectError } from "@connectrpc/connect";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";

/** google.rpc.ErrorInfo of a hookstream error. */
export interface ErrorInfo {
  /** The stable reason, e.g. "CURSOR_PAST_END", "RATE_LIMITED": branch on it. */
  reason: string;
  /** "hookstream.dev". */
  domain: string;
  /** The values the README's table names for the reason, e.g. last_cursor. */
  metadata: Record<string, string>;
}

/** The raw detail of type name (google.rpc.X) in err, if any. */
function detail(err: unknown, name: string): Uint8Array | undefined {
  for (const d of ConnectError.from(err).details) {
    if ("type" in d && d.value instanceof Uint8Array && (d.type === name || d.type.endsWith(`/${name}`))) {
      return d.value;
    }
  }
  return undefined;
}

/**
 * errorInfo returns the ErrorInfo of a failed call's error, undefined when
 * it has none (errors of the transport, or the few grpc-gateway makes).
 */
export function errorInfo(err: unknown): ErrorInfo | undefined {
  const raw = detail(err, "google.rpc.ErrorInfo");
  if (!raw) return undefined;
  const info: ErrorInfo = { reason: "", domain: "", metadata: {} };
  const r = new BinaryReader(raw);
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    if (no === 1 && wt === WireType.LengthDelimited) info.reason = r.string();
    else if (no === 2 && wt === WireType.LengthDelimited) info.domain = r.string();
    else if (no === 3 && wt === WireType.LengthDelimited) {
      const e = new BinaryReader(r.bytes()); // a map entry: key 1, value 2
      let key = "";
      let value = "";
      while (e.pos < e.len) {
        const [n, w] = e.tag();
        if (n === 1 && w === WireType.LengthDelimited) key = e.string();
        else if (n === 2 && w === WireType.LengthDelimited) value = e.string();
        else e.skip(w);
      }
      info.metadata[key] = value;
    } else r.skip(wt);
  }
  return info;
}
