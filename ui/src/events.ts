// Events: the live log with a CEL filter, pause and "load earlier", and
// one event in detail.
import { toJson, toJsonString, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate, ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, code, message, type API } from "./api.js";
import { codeBlock, copyButton, h, prettyBody, replace, time } from "./dom.js";
import { contact, date, enumName, shellQuote, subject, vendorTitle } from "./format.js";
import type { Page } from "./main.js";
import { emptyState } from "./sources.js";
import { ClinchPadWebhookSchema } from "../../gen/ts/hookstream/v1/clinchpad_pb.js";
import { CloserConversationSchema } from "../../gen/ts/hookstream/v1/closer_pb.js";
import { ActorKind, EventSchema, type Event } from "../../gen/ts/hookstream/v1/event_pb.js";
import { AttemptOutcome } from "../../gen/ts/hookstream/v1/endpoint_service_pb.js";
import { PipedriveChangeV1Schema, PipedriveChangeV2Schema } from "../../gen/ts/hookstream/v1/pipedrive_pb.js";

const filterKey = "hookstream.filter";
/** earlierTarget is how many events one "load earlier" adds. */
const earlierTarget = 50;
/** maxRows bounds the table; the oldest rows go first. */
const maxRows = 1000;
const hour = 3600_000;
/** maxWindow is how far back "load earlier" looks before it gives up. */
const maxWindow = 40 * 24 * hour;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });

export const eventsPage: Page = (main, api) => {
  let filter = sessionStorage.getItem(filterKey) ?? "";
  const shown = new Set<string>();
  let oldest: Event | undefined; // the bottom row
  let newestCursor = "";
  let since = new Date(); // the live stream starts here when it has no cursor
  let windowMs = hour;
  let noMore = false;
  let paused = false;
  let live: AbortController | undefined;
  let generation = 0; // bumped when the filter changes: stale results are dropped

  const input = h("input", {
    id: "filter", name: "filter", type: "text", spellcheck: "false", autocomplete: "off", value: filter,
    placeholder: 'event.type == "deal.updated"', "aria-describedby": "filter-help filter-error",
  });
  const filterError = h("p", { id: "filter-error", class: "error", role: "alert" });
  const status = h("span", { id: "live-status", class: "status", role: "status" }, "Connecting…");
  const pauseButton = h("button", { type: "button", id: "pause", "aria-pressed": "false" }, "Pause");
  const earlierButton = h("button", { type: "button", id: "load-earlier" }, "Load earlier");
  const earlierStatus = h("span", { class: "status", role: "status" });
  const earlierBar = h("div", { class: "toolbar" }, earlierButton, earlierStatus);
  const tbody = h("tbody");
  const empty = h("div", { id: "empty" });
  const table = h("table", { class: "events", id: "events" },
    h("caption", { class: "visually-hidden" }, "Events, newest first"),
    h("thead", null, h("tr", null, ["Time", "Source", "Vendor", "Type", "Subject", "Contact"].map((c) =>
      h("th", { scope: "col", class: `col-${c.toLowerCase()}` }, c)))),
    tbody);

  const form = h("form", { class: "filter", role: "search" },
    h("label", { for: "filter" }, "CEL filter"),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Apply")),
    h("p", { id: "filter-help", class: "help" }, "Over ", h("code", null, "event"), " (hookstream.v1.Event), e.g. ",
      h("code", null, 'event.source == "pipedrive" && event.type.startsWith("deal.")'), ". Empty shows every event."),
    filterError);
  replace(main,
    h("h1", null, "Events"),
    form,
    h("div", { class: "toolbar" }, pauseButton, status),
    empty,
    h("div", { class: "scroll" }, table),
    earlierBar);

  function row(ev: Event): HTMLTableRowElement {
    const href = `#/events/${ev.id}`;
    const tr = h("tr", { "data-id": ev.id, onclick: (e: globalThis.Event) => {
      if (!(e.target instanceof HTMLAnchorElement)) location.hash = href;
    } },
      h("td", { class: "col-time" }, h("a", { href }, time(date(ev.receivedAt)), h("span", { class: "visually-hidden" }, ` ${ev.type} from ${ev.source}`))),
      h("td", { class: "col-source" }, ev.source),
      h("td", { class: "col-vendor" }, vendorTitle(ev.vendor)),
      h("td", { class: "col-type" }, h("code", null, ev.type)),
      h("td", { class: "col-subject" }, subject(ev)),
      h("td", { class: "col-contact" }, contact(ev)));
    return tr as HTMLTableRowElement;
  }

  function showEmpty(): void {
    earlierBar.hidden = table.hidden = shown.size === 0;
    if (shown.size > 0) {
      empty.replaceChildren();
      return;
    }
    if (filter) {
      replace(empty, h("p", { class: "empty" }, "No events match this filter yet. New ones appear here as they arrive."));
    } else if (!empty.firstChild) {
      void emptyState(api).then((node) => { if (shown.size === 0 && !filter) replace(empty, node); });
    }
  }

  function addLive(ev: Event): void {
    if (shown.has(ev.id)) return;
    shown.add(ev.id);
    tbody.prepend(row(ev));
    if (!oldest) oldest = ev;
    while (tbody.rows.length > maxRows) {
      const last = tbody.rows[tbody.rows.length - 1];
      shown.delete(last.dataset.id ?? "");
      last.remove();
      noMore = false;
    }
    // The bottom row bounds "load earlier"; trimming moves it up.
    oldestFromTable();
    showEmpty();
  }

  const byId = new Map<string, Event>();
  function remember(ev: Event): Event {
    byId.set(ev.id, ev);
    return ev;
  }
  function oldestFromTable(): void {
    const last = tbody.rows[tbody.rows.length - 1];
    oldest = last ? byId.get(last.dataset.id ?? "") : undefined;
  }

  function setFilterError(text: string): void {
    filterError.textContent = text;
    if (text) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  /**
   * readWindow pages through the events stored from `from` on, up to the
   * event `until` (or the end of the log), and keeps the last `earlierTarget`.
   */
  async function readWindow(from: Date, until: string | undefined): Promise<{ events: Event[]; read: number; capped: boolean }> {
    const keep: Event[] = [];
    let token = "";
    let read = 0;
    for (let pages = 0; ; pages++) {
      const resp = await api.events.listEvents({ filter, pageSize: 500, pageToken: token, startTime: token ? undefined : timestampFromDate(from) });
      for (const ev of resp.events) {
        if (ev.id === until) return { events: keep, read, capped: false };
        keep.push(ev);
        if (keep.length > earlierTarget) keep.shift();
        read++;
      }
      token = resp.nextPageToken;
      if (!token) return { events: keep, read, capped: false };
      if (pages >= 20) return { events: keep, read, capped: true };
    }
  }

  /** earlierFailed says the last loadEarlier failed (not on the filter). */
  let earlierFailed = false;

  /** loadEarlier adds up to earlierTarget events older than the bottom row. */
  async function loadEarlier(): Promise<void> {
    const gen = generation;
    const boundary = oldest;
    const end = boundary ? date(boundary.receivedAt)! : since;
    earlierButton.disabled = true;
    earlierStatus.textContent = "Loading…";
    try {
      let w = windowMs;
      let got: { events: Event[]; read: number; capped: boolean };
      for (;;) {
        got = await readWindow(new Date(end.getTime() - w), boundary?.id);
        if (gen !== generation) return;
        if (got.capped && w > 1000) { w = Math.max(w / 8, 1000); continue; }
        if (got.events.length >= earlierTarget || w >= maxWindow) break;
        w *= 4;
      }
      windowMs = got.read > 4 * earlierTarget ? Math.max(w / 4, 60_000) : Math.min(w, maxWindow);
      noMore = got.events.length === 0 || (got.events.length < earlierTarget && w >= maxWindow);
      for (const ev of got.events.reverse()) {
        if (shown.has(ev.id) || tbody.rows.length >= maxRows) continue;
        shown.add(ev.id);
        tbody.append(row(remember(ev)));
      }
      oldestFromTable();
      earlierStatus.textContent = got.events.length === 0 ? "No earlier events."
        : `${got.events.length} event${got.events.length === 1 ? "" : "s"} loaded${noMore ? "; there are no earlier ones" : ""}.`;
      earlierFailed = false;
      setFilterError("");
      showEmpty();
    } catch (e) {
      if (gen !== generation) return;
      if (code(e) === Code.InvalidArgument) {
        // Nothing is listed or streamed until the filter is fixed.
        setFilterError(message(e));
        earlierStatus.textContent = "";
        earlierBar.hidden = table.hidden = true;
        noMore = true;
        pauseButton.disabled = true;
        throw e;
      }
      earlierStatus.textContent = `Could not load earlier events: ${message(e)}`;
      // Tried again once the live stream is back; meanwhile an empty list
      // says why it is empty, not that the log is.
      earlierFailed = true;
      if (shown.size === 0) {
        earlierBar.hidden = false;
        replace(empty, h("p", { class: "error", role: "alert" }, `Could not load events: ${message(e)}`));
      }
    } finally {
      earlierButton.disabled = noMore;
    }
  }

  async function stream(signal: AbortSignal): Promise<void> {
    let backoff = 250;
    while (!signal.aborted) {
      // Without a cursor, from a minute before the page's clock said the
      // list was read (clocks differ); events seen twice are dropped by id.
      const start = newestCursor
        ? { case: "afterCursor" as const, value: newestCursor }
        : { case: "startTime" as const, value: timestampFromDate(new Date(since.getTime() - 60_000)) };
      try {
        status.textContent = "Live";
        status.className = "status live";
        for await (const msg of api.events.subscribe({ filter, start }, { signal })) {
          if (earlierFailed) {
            earlierFailed = false;
            loadEarlier().catch(() => {});
          }
          if (msg.message.case !== "delivery") continue;
          const { event, cursor } = msg.message.value;
          newestCursor = cursor;
          backoff = 250;
          if (event) addLive(remember(event));
        }
      } catch (e) {
        if (signal.aborted) return;
        if (code(e) === Code.InvalidArgument) {
          setFilterError(message(e));
          status.textContent = "Stopped: the filter is not valid";
          status.className = "status";
          return;
        }
        if (code(e) === Code.Unauthenticated || code(e) === Code.PermissionDenied) {
          status.textContent = `Stopped: ${message(e)}`;
          status.className = "status";
          return;
        }
        status.textContent = `Reconnecting: ${message(e)}`;
        status.className = "status";
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, 10_000);
    }
  }

  function startLive(): void {
    live?.abort();
    live = new AbortController();
    void stream(live.signal);
  }

  /** reset empties the table and starts over with the current filter. */
  async function reset(): Promise<void> {
    const gen = ++generation;
    live?.abort();
    shown.clear();
    byId.clear();
    tbody.replaceChildren();
    empty.replaceChildren();
    oldest = undefined;
    newestCursor = "";
    since = new Date();
    windowMs = hour;
    noMore = false;
    pauseButton.disabled = false;
    setFilterError("");
    status.textContent = "Connecting…";
    status.className = "status";
    try {
      await loadEarlier();
    } catch {
      if (gen === generation) status.textContent = "Stopped: the filter is not valid";
      return; // a bad filter: shown next to the box
    }
    if (gen !== generation) return; // a newer filter took over
    showEmpty();
    // The stream goes on right after the newest event listed: its cursor
    // comes with GetEvent (one log read for a recent event).
    const newest = tbody.rows[0]?.dataset.id;
    if (newest) {
      try {
        newestCursor = (await api.events.getEvent({ id: newest })).cursor;
      } catch {
        // the stream starts from the time instead
      }
      if (gen !== generation) return;
    }
    if (!paused) startLive();
    else status.textContent = "Paused";
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    filter = input.value.trim();
    sessionStorage.setItem(filterKey, filter);
    void reset();
  });
  pauseButton.addEventListener("click", () => {
    paused = !paused;
    pauseButton.textContent = paused ? "Resume" : "Pause";
    pauseButton.setAttribute("aria-pressed", String(paused));
    if (paused) {
      live?.abort();
      status.textContent = "Paused";
      status.className = "status";
    } else {
      startLive(); // from the last cursor: nothing is missed
    }
  });
  earlierButton.addEventListener("click", () => { void loadEarlier().catch(() => {}); });

  void reset();
  return () => { generation++; live?.abort(); };
};

const payloadSchemas: Record<string, DescMessage> = {
  closer: CloserConversationSchema,
  pipedriveV1: PipedriveChangeV1Schema,
  pipedriveV2: PipedriveChangeV2Schema,
  clinchpad: ClinchPadWebhookSchema,
};

function valueText(v: JsonValue | undefined): string {
  if (v === undefined) return "—";
  return typeof v === "string" ? v : JSON.stringify(v);
}

export const eventDetailPage = (main: HTMLElement, api: API, id: string): void => {
  const heading = h("h1", null, "Event");
  const body = h("div", null, h("p", { role: "status" }, "Loading…"));
  replace(main, h("p", null, h("a", { href: "#/events" }, "← Events")), heading, body);
  main.focus();

  void (async () => {
    let resp;
    try {
      resp = await api.events.getEvent({ id, includeRaw: true });
    } catch (e) {
      replace(body, h("p", { class: "error", role: "alert" }, `Could not load event ${id}: ${message(e)}`));
      return;
    }
    const ev = resp.event!;
    heading.textContent = `${ev.type} · ${ev.source}`;
    const canonical = toJsonString(EventSchema, { ...ev, raw: undefined, payload: { case: undefined } }, { prettySpaces: 2 });
    const schema = ev.payload.case ? payloadSchemas[ev.payload.case] : undefined;
    const payload = schema && ev.payload.value ? toJsonString(schema, ev.payload.value, { prettySpaces: 2 }) : "";
    const host = location.hostname.includes(":") ? `[${location.hostname}]` : location.hostname;
    const curl = `curl -s -H "Authorization: Bearer $HOOKSTREAM_TOKEN" ${shellQuote(`${location.origin}/v1/events/${ev.id}?include_raw=true`)}`;
    // The gRPC port is the server's config, which the page does not know:
    // $HOOKSTREAM_ADDR (the CLI's variable) names it, the default port
    // stands in. A page served over TLS means a server with TLS.
    const plaintext = location.protocol === "https:" ? "" : "-plaintext ";
    const grpcurl = `grpcurl ${plaintext}-H "authorization: Bearer $HOOKSTREAM_TOKEN" -d ${shellQuote(JSON.stringify({ id: ev.id, include_raw: true }))} "\${HOOKSTREAM_ADDR:-${host}:9090}" hookstream.v1.EventService/GetEvent`;
    const commands = codeBlock("Command", curl, "command");
    const show = (text: string) => () => { commands.firstElementChild!.textContent = text; return text; };

    const facts: [string, Node | string][] = [
      ["Id", h("code", null, ev.id)],
      ["Cursor", h("code", { id: "cursor" }, resp.cursor)],
      ["Vendor", `${vendorTitle(ev.vendor)} (${ev.vendorType})`],
      ["Occurred", time(date(ev.occurredAt))],
      ["Received", time(date(ev.receivedAt))],
      ["Subject", subject(ev)],
      ["Actor", ev.actor ? [enumName(ActorKind, ev.actor.kind), ev.actor.name, ev.actor.email, ev.actor.id && `#${ev.actor.id}`].filter(Boolean).join(" · ") : "—"],
      ["Contact", contact(ev) || "—"],
    ];
    if (ev.supersedes) facts.push(["Supersedes", h("a", { href: `#/events/${ev.supersedes}` }, ev.supersedes)]);

    const changes = ev.changes.length === 0
      ? h("p", null, "This event records no field changes.")
      : h("div", { class: "scroll" }, h("table", { id: "changes" },
        h("caption", { class: "visually-hidden" }, "Changed fields, before and after"),
        h("thead", null, h("tr", null, h("th", { scope: "col" }, "Field"), h("th", { scope: "col" }, "Before"), h("th", { scope: "col" }, "After"))),
        h("tbody", null, ev.changes.map((c) => h("tr", null,
          h("th", { scope: "row" }, h("code", null, c.field)),
          h("td", { class: "before" }, valueText(c.oldValue ? toJson(ValueSchema, c.oldValue) : undefined)),
          h("td", { class: "after" }, valueText(c.newValue ? toJson(ValueSchema, c.newValue) : undefined)))))));

    const raw = ev.raw
      ? [h("p", null, "Content type: ", h("code", null, ev.raw.contentType || "—"), ". Secrets were replaced by ", h("code", null, "[REDACTED]"), " before it was stored."),
        ev.raw.bodyText
          ? codeBlock("Original request body", prettyBody(ev.raw.bodyText), "raw-body")
          : h("p", null, `A binary body of ${ev.raw.body.length} bytes.`)]
      : h("p", null, "The log keeps no copy of this request (", h("code", null, "log.keep_raw"), " was off, or the event was too large with it).");

    const attempts = h("div", null, h("p", null, "Loading…"));
    replace(body,
      h("div", { class: "toolbar" },
        copyButton("Copy as curl", show(curl)),
        copyButton("Copy as grpcurl", show(grpcurl))),
      commands,
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", null, k), h("dd", null, v)])),
      h("h2", null, "Changes"), changes,
      h("h2", null, "Original request"), raw,
      h("h2", null, "Canonical event"), codeBlock("Canonical event JSON", canonical, "canonical"),
      h("h2", null, `Vendor payload (${ev.payload.case ?? "none"})`), codeBlock("Typed vendor payload JSON", payload || "{}", "payload"),
      h("h2", null, "Deliveries to endpoints"), attempts);

    try {
      const a = await api.endpoints.listDeliveryAttempts({ eventId: ev.id, pageSize: 100 });
      replace(attempts, a.attempts.length === 0
        ? h("p", null, "No endpoint has been sent this event.")
        : h("ul", null, a.attempts.map((t) => h("li", null, time(date(t.time)), ` → endpoint ${t.endpointId}: `,
          t.statusCode ? `HTTP ${t.statusCode}` : t.error, ` (${enumName(AttemptOutcome, t.outcome)}, attempt ${t.attempt})`))));
    } catch (e) {
      replace(attempts, h("p", null, `Attempts unavailable: ${message(e)}`));
    }
  })();
};
