// The inspector's shell: login, navigation, and the hash router that
// shows one page at a time.
import { login, logout, message, restore, type API } from "./api.js";
import { h, replace } from "./dom.js";
import { deliveriesPage } from "./deliveries.js";
import { eventDetailPage, eventsPage } from "./events.js";
import { quarantinePage } from "./quarantine.js";
import { sourcesPage } from "./sources.js";

/** A page renders into main and returns how to stop it (streams, timers). */
export type Page = (main: HTMLElement, api: API, arg: string) => (() => void) | void;

const pages: Record<string, { title: string; page: Page }> = {
  events: { title: "Events", page: eventsPage },
  quarantine: { title: "Quarantine", page: quarantinePage },
  sources: { title: "Sources", page: sourcesPage },
  deliveries: { title: "Deliveries", page: deliveriesPage },
};

const root = document.getElementById("app")!;
let stop: (() => void) | void;
/** listMain is the events list's element while the list is shown. */
let listMain: HTMLElement | undefined;

/**
 * kept is the events list while an event opened from it is shown (and
 * any event linked from that one): still filled, still streaming if it
 * was live, so that going back shows it as it was left (the rows "load
 * earlier" added, the scroll position, pause) instead of reading the log
 * again. Any other page, or logging out, stops it.
 */
let kept: {
  main: HTMLElement;
  stop: (() => void) | void;
  scrollY: number;
  /** The event opened and its row's place in the viewport, if listed. */
  id: string;
  rowTop: number | undefined;
} | undefined;

/** listRow is the list's row of an event, if it is listed. */
function listRow(main: HTMLElement, id: string): HTMLElement | null {
  return main.querySelector(`#events tbody tr[data-id="${CSS.escape(id)}"]`);
}

function dropKept(): void {
  kept?.stop?.();
  kept = undefined;
}

/** decodePart decodes a part of the hash; one that does not decode (a
 * pasted link cut short) is taken as written, so the page shows that
 * nothing is found instead of failing. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function route(): void {
  const api = restore();
  const [, name = "events", arg = ""] = location.hash.split("/").map(decodePart);
  const current = pages[name] ? name : "events";
  const detail = current === "events" && arg !== "";
  if (api && detail && listMain) {
    // The list is left for an event: it is kept, not stopped. Its rows
    // are still laid out here, before the detail replaces them.
    kept = { main: listMain, stop, scrollY: window.scrollY, id: arg, rowTop: listRow(listMain, arg)?.getBoundingClientRect().top };
  } else {
    stop?.();
  }
  stop = undefined;
  listMain = undefined;
  // Back to the list, or on to another page: the kept list is shown
  // again, or stopped.
  const back = api && current === "events" && !detail ? kept : undefined;
  if (back) kept = undefined;
  else if (!api || !detail) dropKept();
  if (!api) {
    loginView();
    return;
  }
  const main = back?.main ?? h("main", { id: "main", tabindex: -1 });
  const nav = h("nav", { "aria-label": "Inspector" },
    h("ul", null, Object.entries(pages).map(([key, p]) =>
      h("li", null, h("a", { href: `#/${key}`, "aria-current": key === current ? "page" : null }, p.title)))));
  const header = h("header", { class: "top" },
    h("a", { class: "skip", href: "#main", onclick: (e: Event) => { e.preventDefault(); main.focus(); } }, "Skip to content"),
    h("span", { class: "brand" }, "hookstream"),
    nav,
    h("span", { class: "who" },
      h("span", { class: `scope scope-${api.scope}`, title: api.scope === "admin" ? "This token may change things" : "This token may only read" }, `${api.scope} token`),
      h("button", { type: "button", class: "link", onclick: () => { logout(); location.hash = "#/"; route(); } }, "Log out")));
  replace(root, header, main);
  document.title = `${detail ? "Event" : pages[current].title} · hookstream`;
  if (current === "events" && !detail) listMain = main;
  if (back) {
    stop = back.stop;
    restoreScroll(back);
    return;
  }
  stop = detail ? eventDetailPage(main, api, arg) : pages[current].page(main, api, arg);
}

/**
 * restoreScroll scrolls the list back to where it was left, and gives the
 * focus back to the row opened. Events that arrived live meanwhile were
 * added above it: the opened row is put back where it was in the viewport,
 * as the browser's scroll anchoring does for a list on screen, unless the
 * list was at its top, where new events show.
 */
function restoreScroll(back: NonNullable<typeof kept>): void {
  window.scrollTo(0, back.scrollY);
  const row = listRow(back.main, back.id);
  if (row && back.rowTop !== undefined && back.scrollY > 0) window.scrollBy(0, row.getBoundingClientRect().top - back.rowTop);
  row?.querySelector("a")?.focus({ preventScroll: true });
}

function loginView(): void {
  document.title = "Log in · hookstream";
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const error = h("p", { id: "login-error", class: "error", role: "alert" });
  const form = h("form", { class: "login", "aria-describedby": "login-help" },
    h("h1", null, "hookstream inspector"),
    h("p", { id: "login-help" }, "Log in with an API token from ", h("code", null, "api.tokens"),
      ". A read token shows events, sources and deliveries; an admin token can also reprocess or discard quarantined requests, reveal credentials and redrive dead letters. The token stays in this tab's session storage."),
    h("label", { for: "token" }, "API token"),
    input,
    h("button", { type: "submit" }, "Log in"),
    error);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    try {
      await login(input.value.trim());
      if (!location.hash || location.hash === "#/") location.hash = "#/events";
      route();
    } catch (err) {
      error.textContent = `Not logged in: ${message(err)}`;
      input.focus();
    }
  });
  replace(root, h("main", { id: "main" }, form));
  input.focus();
}

window.addEventListener("hashchange", route);
route();
