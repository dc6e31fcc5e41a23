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
  stop?.();
  stop = undefined;
  const api = restore();
  if (!api) {
    loginView();
    return;
  }
  const [, name = "events", arg = ""] = location.hash.split("/").map(decodePart);
  const current = pages[name] ? name : "events";
  const main = h("main", { id: "main", tabindex: -1 });
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
  const detail = current === "events" && arg !== "";
  document.title = `${detail ? "Event" : pages[current].title} · hookstream`;
  stop = detail ? eventDetailPage(main, api, arg) : pages[current].page(main, api, arg);
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
