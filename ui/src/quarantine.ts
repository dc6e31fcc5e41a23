// Quarantine: authenticated webhooks that could not be normalized, with
// their reason and readable bodies; admins reprocess one or all, and
// discard one (after a confirmation in the page: no window.confirm, which
// headless browsers and strict pages handle badly).
import { code, Code, message } from "./api.js";
import { codeBlock, h, prettyBody, replace, time } from "./dom.js";
import { date, enumName, vendorTitle } from "./format.js";
import type { Page } from "./main.js";
import { IngestOutcome, RejectionCode, type Rejection } from "../../gen/ts/hookstream/v1/ingest_service_pb.js";
import { QuarantineState, type QuarantinedRequest, type ReprocessResult } from "../../gen/ts/hookstream/v1/quarantine_service_pb.js";

function reason(r: Rejection | undefined): string {
  if (!r) return "—";
  return `${enumName(RejectionCode, r.code).replace(/^rejection code /, "")}${r.field ? ` at ${r.field}` : ""}: ${r.message}`;
}

function resultText(r: ReprocessResult): Node {
  switch (r.outcome) {
    case IngestOutcome.ACCEPTED:
    case IngestOutcome.DUPLICATE:
      return h("span", null, `${r.outcome === IngestOutcome.DUPLICATE ? "Already stored" : "Reprocessed"}: event `,
        h("a", { href: `#/events/${r.eventId}` }, r.eventId));
    default:
      return h("span", null, `Still failing: ${reason(r.rejection)}`);
  }
}

export const quarantinePage: Page = (main, api) => {
  replace(main, h("h1", null, "Quarantine"));
  if (api.scope !== "admin") {
    main.append(h("p", { class: "notice" }, "The quarantine holds raw vendor requests, so it needs an admin token. Log in with one to see, reprocess and discard them."));
    return;
  }
  let token = "";
  let showReprocessed = false;
  const list = h("div", { id: "quarantine-list" });
  const more = h("button", { type: "button", id: "quarantine-more", hidden: true }, "Load more");
  const allResult = h("p", { id: "reprocess-all-result", role: "status" });
  // What became of a discarded entry, said here since its card is gone.
  const discardResult = h("p", { id: "discard-result", role: "status" });
  const title = h("h1", { tabindex: -1 }, "Quarantine");
  const allButton = h("button", { type: "button", id: "reprocess-all" }, "Reprocess all");
  const toggle = h("input", { type: "checkbox", id: "show-reprocessed" });
  replace(main,
    title,
    h("p", null, "Authenticated webhooks that could not be normalized are kept here with the reason, secrets removed. After a fix, reprocess them: each then becomes the event a first-time success would have made. Discard one to delete it for good."),
    h("div", { class: "toolbar" }, allButton, h("label", { class: "check" }, toggle, " Show reprocessed")),
    allResult, discardResult, list, more);

  /**
   * discarded takes a discarded entry's card off the page, says so, and
   * moves focus to the next card's heading (or the page's), so a keyboard
   * user is not left on a removed button.
   */
  function discarded(card: HTMLElement, text: string): void {
    const next = (card.nextElementSibling ?? card.previousElementSibling)?.querySelector<HTMLElement>("h2");
    card.remove();
    discardResult.textContent = text;
    if (next) {
      next.tabIndex = -1;
      next.focus();
    } else {
      title.focus();
      // The last one shown: show the empty quarantine, or the next page.
      void load(true);
    }
  }

  function entry(q: QuarantinedRequest): HTMLElement {
    const result = h("p", { class: "result", role: "status" });
    const button = h("button", { type: "button", class: "reprocess", "aria-label": `Reprocess ${q.id}` }, "Reprocess");
    button.addEventListener("click", async () => {
      button.disabled = true;
      result.textContent = "Reprocessing…";
      try {
        const r = await api.quarantine.reprocessQuarantined({ id: q.id });
        replace(result, resultText(r.result!));
      } catch (e) {
        result.textContent = `Reprocess failed: ${message(e)}`;
      } finally {
        button.disabled = false;
      }
    });
    // Discard asks first: the button gives way to a question, "Yes,
    // discard" and "Cancel". Focus goes to Cancel, so a double click or a
    // repeated Enter never discards; Escape cancels too.
    const error = h("p", { class: "error", role: "alert" });
    const discard = h("button", { type: "button", class: "danger discard", "aria-label": `Discard ${q.id}` }, "Discard");
    // The question describes both answers, so a screen reader reads it
    // with the focused Cancel. (Ids are hashes, fit for an id attribute.)
    const askId = `discard-ask-${q.id}`;
    const ask = h("span", { class: "ask", id: askId, hidden: true }, "Discard for good? The body is deleted and cannot be reprocessed.");
    const yes = h("button", { type: "button", class: "danger confirm", "aria-label": `Yes, discard ${q.id}`, "aria-describedby": askId, hidden: true }, "Yes, discard");
    const cancel = h("button", { type: "button", "aria-label": `Cancel discarding ${q.id}`, "aria-describedby": askId, hidden: true }, "Cancel");
    const confirming = (on: boolean) => {
      discard.hidden = on;
      ask.hidden = yes.hidden = cancel.hidden = !on;
    };
    discard.addEventListener("click", () => {
      error.textContent = "";
      confirming(true);
      cancel.focus();
    });
    cancel.addEventListener("click", () => {
      confirming(false);
      discard.focus();
    });
    for (const b of [yes, cancel]) {
      b.addEventListener("keydown", (e) => {
        if (e.key === "Escape") cancel.click();
      });
    }
    yes.addEventListener("click", async () => {
      yes.disabled = cancel.disabled = true;
      result.textContent = "Discarding…";
      try {
        await api.quarantine.discardQuarantined({ id: q.id });
        discarded(card, `Discarded ${q.id}.`);
      } catch (e) {
        if (code(e) === Code.NotFound) {
          // Someone else discarded it (or it aged out): it is gone all the same.
          discarded(card, `${q.id} was already gone.`);
          return;
        }
        result.textContent = "";
        error.textContent = code(e) === Code.PermissionDenied ? "Discard needs an admin token." : `Discard failed: ${message(e)}`;
        confirming(false);
        discard.focus();
      } finally {
        yes.disabled = cancel.disabled = false;
      }
    });
    const body = q.bodyText
      ? codeBlock(`Body of ${q.id}`, prettyBody(q.bodyText))
      : q.body.length ? h("p", null, `A binary body of ${q.body.length} bytes.`) : h("p", null, "An empty body.");
    const card = h("article", { class: "card", "data-id": q.id },
      h("h2", null, `${q.source} · ${vendorTitle(q.vendor)}`),
      h("dl", { class: "facts" },
        h("dt", null, "Reason"), h("dd", { class: "reason" }, reason(q.rejection)),
        h("dt", null, "Field"), h("dd", null, q.rejection?.field ? h("code", null, q.rejection.field) : "—"),
        h("dt", null, "Received"), h("dd", null, time(date(q.receivedAt))),
        h("dt", null, "State"), h("dd", null, enumName(QuarantineState, q.state).replace(/^quarantine state /, ""),
          q.eventId ? [" → ", h("a", { href: `#/events/${q.eventId}` }, q.eventId)] : null),
        h("dt", null, "Id"), h("dd", null, h("code", null, q.id)),
        h("dt", null, "Content type"), h("dd", null, h("code", null, q.contentType || "—"))),
      h("details", { open: true }, h("summary", null, "Body"), body),
      h("div", { class: "toolbar" }, q.state === QuarantineState.PENDING ? button : null, discard, ask, yes, cancel),
      result, error);
    return card;
  }

  async function load(first: boolean): Promise<void> {
    if (first) {
      token = "";
      list.replaceChildren(h("p", { role: "status" }, "Loading…"));
    }
    more.disabled = true;
    try {
      // A page can be short, or empty, with a token (bounded reads): read
      // on until something shows or the quarantine ends.
      let found = 0;
      do {
        const resp = await api.quarantine.listQuarantined({ pageSize: 50, pageToken: token, includeReprocessed: showReprocessed });
        if (first && found === 0) list.replaceChildren();
        for (const q of resp.requests) list.append(entry(q));
        found += resp.requests.length;
        token = resp.nextPageToken;
      } while (token && found === 0);
      if (first && found === 0) {
        list.replaceChildren(h("div", { class: "empty" }, h("p", null, "The quarantine is empty: every webhook so far was normalized."),
          h("p", null, "A request lands here when it authenticates but cannot be normalized, for example a body that is not JSON:"),
          codeBlock("Command", `echo 'not json' > bad.json && hookstream send --source closer bad.json`)));
      }
    } catch (e) {
      list.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not list the quarantine: ${message(e)}`));
    } finally {
      more.hidden = !token;
      more.disabled = false;
    }
  }

  allButton.addEventListener("click", async () => {
    allButton.disabled = true;
    allResult.textContent = "Reprocessing…";
    let reprocessed = 0, failing = 0, page = "";
    try {
      do {
        const r = await api.quarantine.reprocessAllQuarantined({ pageToken: page });
        reprocessed += r.reprocessed;
        failing += r.stillFailing;
        page = r.nextPageToken;
        allResult.textContent = `Reprocessed ${reprocessed}, still failing ${failing}…`;
      } while (page);
      allResult.textContent = `Done: ${reprocessed} reprocessed, ${failing} still failing.`;
      await load(true);
    } catch (e) {
      allResult.textContent = code(e) === Code.PermissionDenied ? "Needs an admin token." : `Reprocess all failed: ${message(e)}`;
    } finally {
      allButton.disabled = false;
    }
  });
  toggle.addEventListener("change", () => { showReprocessed = toggle.checked; void load(true); });
  more.addEventListener("click", () => { void load(false); });
  void load(true);
};
