// Deliveries: outbound endpoints with their health, recent attempts and
// dead letters; admins redrive them.
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { message } from "./api.js";
import { append, codeBlock, h, replace, time } from "./dom.js";
import { date, enumName } from "./format.js";
import type { Page } from "./main.js";
import { AttemptOutcome, EndpointState, type DeliveryAttempt, type Endpoint } from "../../gen/ts/hookstream/v1/endpoint_service_pb.js";

/** recentPages bounds the attempt pages read in one window. */
const recentPages = 3;
/**
 * recentWindows are how far before an endpoint's last attempt its newest
 * attempts are looked for (the list is oldest first): the narrowest window
 * that holds ten is read, so a busy endpoint costs a page, not its history.
 */
const recentWindows = [1_000, 60_000, 3_600_000, 86_400_000];

function attemptRow(a: DeliveryAttempt): HTMLTableRowElement {
  return h("tr", null,
    h("td", null, time(date(a.time))),
    h("td", null, a.eventId === "" ? "—" : h("a", { href: `#/events/${a.eventId}` }, a.eventId.slice(0, 12) + "…")),
    h("td", null, String(a.attempt)),
    h("td", null, a.statusCode ? `HTTP ${a.statusCode}` : a.error || "—"),
    h("td", null, enumName(AttemptOutcome, a.outcome))) as HTMLTableRowElement;
}

export const deliveriesPage: Page = (main, api) => {
  const list = h("div", { id: "endpoints" }, h("p", { role: "status" }, "Loading…"));
  replace(main, h("h1", null, "Deliveries"),
    h("p", null, "Endpoints that hookstream pushes events to, signed Standard Webhooks, retried on a schedule; what gave up is a dead letter until it is redriven."),
    list);

  async function recentAttempts(ep: Endpoint): Promise<DeliveryAttempt[]> {
    const lastAt = date(ep.lastAttemptTime);
    // The last window is the whole attempts log, also where no last attempt is known.
    const starts: (Date | undefined)[] = lastAt ? recentWindows.map((w) => new Date(lastAt.getTime() - w)) : [];
    starts.push(undefined);
    let last: DeliveryAttempt[] = [];
    for (const start of starts) {
      const startTime = start ? timestampFromDate(start) : undefined;
      let token = "";
      last = [];
      for (let i = 0; i < recentPages; i++) {
        const r = await api.endpoints.listDeliveryAttempts({ endpointId: ep.id, pageSize: 1000, pageToken: token, startTime });
        last = [...last, ...r.attempts].slice(-10);
        token = r.nextPageToken;
        if (!token) break;
      }
      // A window with more than the pages hold shows its last page's newest.
      if (last.length >= 10 || token) break;
    }
    return last.reverse();
  }

  function card(ep: Endpoint): HTMLElement {
    const health = ep.state === EndpointState.ACTIVE ? "healthy" : ep.state === EndpointState.PAUSED ? "paused" : "disabled";
    const badge = h("span", { class: `badge ${health}` }, health);
    const attempts = h("div", null, h("p", null, "Loading attempts…"));
    const dead = h("div", null, h("p", null, "Loading dead letters…"));
    const result = h("p", { class: "result", role: "status" });
    const article = h("article", { class: "card", "data-endpoint": ep.id },
      h("h2", null, ep.description || ep.url),
      h("p", null, badge, " ", h("code", { class: "url" }, ep.url),
        ep.disabledReason ? ` — ${ep.disabledReason}` : ""),
      h("dl", { class: "facts" },
        h("dt", null, "Id"), h("dd", null, h("code", null, ep.id)),
        h("dt", null, "Filter"), h("dd", null, ep.filter ? h("code", null, ep.filter) : "every event"),
        h("dt", null, "Last attempt"), h("dd", null, ep.lastAttemptTime
          ? [time(date(ep.lastAttemptTime)), ep.lastAttemptStatusCode ? ` — HTTP ${ep.lastAttemptStatusCode}` : " — no response"]
          : "none"),
        ep.pipedrive ? [h("dt", null, "Pipedrive webhook"), h("dd", null, `${ep.pipedrive.eventAction}.${ep.pipedrive.eventObject}`)] : null),
      h("h3", null, "Recent attempts"), attempts,
      h("h3", null, "Dead letters"), dead, result);

    void (async () => {
      try {
        const recent = await recentAttempts(ep);
        const failing = recent.length > 0 && recent[0].outcome !== AttemptOutcome.SUCCEEDED;
        if (failing && ep.state === EndpointState.ACTIVE) {
          badge.className = "badge failing";
          badge.textContent = "failing";
        }
        replace(attempts, recent.length === 0 ? h("p", null, "No attempts yet.") : h("div", { class: "scroll" }, h("table", null,
          h("caption", { class: "visually-hidden" }, `Latest attempts to ${ep.url}, newest first`),
          h("thead", null, h("tr", null, ["Time", "Event", "Attempt", "Answer", "Outcome"].map((c) => h("th", { scope: "col" }, c)))),
          h("tbody", null, recent.map(attemptRow)))));
      } catch (e) {
        replace(attempts, h("p", { class: "error" }, `Attempts unavailable: ${message(e)}`));
      }
      await loadDead();
    })();

    async function loadDead(): Promise<void> {
      try {
        const r = await api.endpoints.listDeadLetters({ endpointId: ep.id, pageSize: 50 });
        if (r.deadLetters.length === 0) {
          replace(dead, h("p", null, "None."));
          return;
        }
        const redrive = async (req: { case: "all"; value: boolean } | { case: "deadLetterId"; value: string }, button: HTMLButtonElement) => {
          button.disabled = true;
          result.textContent = "Redriving…";
          let n = 0, token = "";
          try {
            do {
              const resp = await api.endpoints.redriveDeadLetters({ endpointId: ep.id, selector: req, pageToken: token });
              n += resp.redriven;
              token = resp.nextPageToken;
            } while (token);
            result.textContent = `Redriven: ${n} dead letter${n === 1 ? "" : "s"} handed back to delivery.`;
            await loadDead();
          } catch (e) {
            result.textContent = `Redrive failed: ${message(e)}`;
            button.disabled = false;
          }
        };
        const admin = api.scope === "admin";
        const item = (d: (typeof r.deadLetters)[number]): HTMLLIElement => {
          const last = d.attempts[d.attempts.length - 1];
          const one = h("button", { type: "button", "aria-label": `Redrive dead letter ${d.id}` }, "Redrive");
          one.addEventListener("click", () => void redrive({ case: "deadLetterId", value: d.id }, one));
          return h("li", null, time(date(d.deadTime)), " ", h("a", { href: `#/events/${d.eventId}` }, d.eventId.slice(0, 12) + "…"),
            ` after ${d.attempts.length} attempts`, last ? ` (last: ${last.statusCode ? `HTTP ${last.statusCode}` : last.error})` : "",
            admin ? [" ", one] : null);
        };
        // The list is oldest first, a page at a time: what is shown is
        // counted, and the rest is a click away (Redrive all takes them all).
        const items = h("ul", { class: "dead" }, r.deadLetters.map(item));
        const count = h("p", { class: "help", role: "status" });
        const more = h("button", { type: "button", class: "load-more" }, "Load more");
        let shown = r.deadLetters.length, token = r.nextPageToken;
        const counted = () => {
          count.textContent = token ? `The oldest ${shown} shown; there are more.` : `${shown} dead letter${shown === 1 ? "" : "s"}, oldest first.`;
          more.hidden = !token;
        };
        more.addEventListener("click", () => void (async () => {
          more.disabled = true;
          try {
            const next = await api.endpoints.listDeadLetters({ endpointId: ep.id, pageSize: 50, pageToken: token });
            append(items, next.deadLetters.map(item));
            shown += next.deadLetters.length;
            token = next.nextPageToken;
            counted();
          } catch (e) {
            count.textContent = `More dead letters unavailable: ${message(e)}`;
          } finally {
            more.disabled = false;
          }
        })());
        counted();
        const all = h("button", { type: "button", class: "redrive-all" }, token ? "Redrive all" : `Redrive all (${shown})`);
        all.addEventListener("click", () => void redrive({ case: "all", value: true }, all));
        replace(dead,
          admin ? h("div", { class: "toolbar" }, all) : h("p", { class: "help" }, "An admin token can redrive them."),
          count, items, more);
      } catch (e) {
        replace(dead, h("p", { class: "error" }, `Dead letters unavailable: ${message(e)}`));
      }
    }
    return article;
  }

  void (async () => {
    try {
      const eps: Endpoint[] = [];
      let token = "";
      do {
        const r = await api.endpoints.listEndpoints({ pageSize: 100, pageToken: token });
        eps.push(...r.endpoints);
        token = r.nextPageToken;
      } while (token && eps.length < 500);
      replace(list, eps.length === 0
        ? h("div", { class: "empty" }, h("h2", null, "No endpoints yet"),
          h("p", null, "Create one to have events pushed to your service (admin token):"),
          codeBlock("Command that creates an endpoint", `curl -s -X POST ${location.origin}/v1/endpoints -H "authorization: Bearer $HOOKSTREAM_TOKEN" \\\n  -d '{"url": "https://example.com/hooks/hookstream", "filter": "event.type.startsWith(\\"deal.\\")"}'`))
        : eps.map(card));
    } catch (e) {
      replace(list, h("p", { class: "error", role: "alert" }, `Could not list endpoints: ${message(e)}`));
    }
  })();
};
