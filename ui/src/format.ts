// Names and one-line summaries of the API's values, for tables.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Vendor, type Event } from "../../gen/ts/hookstream/v1/event_pb.js";

export const vendorTitles: Record<number, string> = {
  [Vendor.CLOSER]: "Closer",
  [Vendor.PIPEDRIVE]: "Pipedrive",
  [Vendor.CLINCHPAD]: "ClinchPad",
};

export function vendorTitle(v: Vendor): string {
  return vendorTitles[v] ?? "unknown";
}

/** enumName turns an enum value into words: ENDPOINT_STATE_ACTIVE → "active". */
export function enumName(names: Record<number, string>, v: number): string {
  return (names[v] ?? String(v)).toLowerCase().replace(/_/g, " ");
}

export function date(t: Timestamp | undefined): Date | undefined {
  return t ? timestampDate(t) : undefined;
}

export function subject(ev: Event): string {
  const s = ev.subject;
  if (!s) return "";
  return [s.kind, s.id && `#${s.id}`, s.name && `“${s.name}”`].filter(Boolean).join(" ");
}

export function contact(ev: Event): string {
  const c = ev.contact;
  if (!c) return "";
  return [c.name, c.email || c.phone].filter(Boolean).join(" · ") || (c.id ? `#${c.id}` : "");
}

/** shellQuote quotes s for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
