// Sources: each source's webhook URL and what to enter at the vendor,
// credentials masked (admins reveal them), and how its webhooks fared.
import { message, type API } from "./api.js";
import { codeBlock, copyButton, h, replace, time } from "./dom.js";
import { date, enumName, shellQuote } from "./format.js";
import type { Page } from "./main.js";
import { Vendor } from "../../gen/ts/hookstream/v1/event_pb.js";
import { SourceAuthScheme, type SetupField, type Source } from "../../gen/ts/hookstream/v1/source_service_pb.js";

const mask = "••••••••";

/** examples are the CLI's built-in sample webhooks of each vendor. */
const examples: Record<number, string> = {
  [Vendor.PIPEDRIVE]: "pipedrive.deal.change",
  [Vendor.CLOSER]: "closer.created",
  [Vendor.CLINCHPAD]: "clinchpad.lead.moved",
};

export function webhookURL(s: Source): string {
  return s.webhookUrl || location.origin + s.webhookPath;
}

/**
 * curlCommand posts Closer's smallest conversation, made unique by the
 * time, to a Closer source; "" for other sources (their bodies are long).
 */
export function curlCommand(s: Source): string {
  if (s.vendor !== Vendor.CLOSER || (s.authScheme !== SourceAuthScheme.TOKEN && s.authScheme !== SourceAuthScheme.NONE)) return "";
  const url = webhookURL(s) + (s.authScheme === SourceAuthScheme.TOKEN ? "?token=$SOURCE_TOKEN" : "");
  return `curl -s -X POST "${url}" -H 'content-type: application/json' \\\n` +
    `  -d '{"eventType": "ThreadCreatedEvent", "timestamp": '"$(date +%s000)"', "customer": {"id": "c-1", "firstName": "Anna"}}'`;
}

/** sendCommands are the commands that post a sample webhook to a source. */
export function sendCommands(s: Source): string {
  const cli = `hookstream send --source ${s.name} --example ${examples[s.vendor] ?? "closer.created"}`;
  const curl = curlCommand(s);
  return curl ? `${cli}\n\n# or, with curl:\n${curl}` : cli;
}

/** emptyState teaches how to make the first event. */
export async function emptyState(api: API): Promise<HTMLElement> {
  let sources: Source[] = [];
  try {
    sources = (await api.sources.listSources({})).sources;
  } catch {
    // the commands below still help
  }
  const first = sources[0];
  const curl = sources.map(curlCommand).find(Boolean) ?? "";
  const commands = first
    ? sources.map((s) => `hookstream send --source ${s.name} --example ${examples[s.vendor] ?? "closer.created"}`).join("\n")
    : "hookstream send --example pipedrive.deal.change";
  return h("div", { class: "empty" },
    h("h2", null, "No events yet"),
    h("p", null, "Events appear here live as vendors post webhooks. Post a sample one with the CLI, run beside the server (it reads the generated config for the credentials):"),
    codeBlock("Commands that post a sample webhook", commands, "send-commands"),
    curl ? [h("p", null, "Or with curl (", h("code", null, "$SOURCE_TOKEN"), " is the source's token; an admin token reveals it on the Sources page):"),
      codeBlock("Command that posts a sample webhook with curl", curl, "send-curl")] : null,
    first ? h("p", null, "Each source's URL and what to enter at the vendor are on the ", h("a", { href: "#/sources" }, "Sources"), " page.") : null);
}

/** absolute makes a webhook path a URL of the server the page came from. */
function absolute(v: string): string {
  return v.startsWith("/") ? location.origin + v : v;
}

function fieldValue(f: SetupField): string {
  return absolute(f.secret && !f.value ? (f.maskedValue || mask) : f.value);
}

export const sourcesPage: Page = (main, api) => {
  const list = h("div", { id: "sources" }, h("p", { role: "status" }, "Loading…"));
  replace(main, h("h1", null, "Sources"),
    h("p", null, "Each source is one webhook URL. Enter these values at the vendor; the counts are since this server started."),
    list);

  function card(s: Source): HTMLElement {
    const fields = h("tbody");
    const render = (fs: SetupField[]) => replace(fields, fs.map((f) => h("tr", null,
      h("th", { scope: "row" }, f.label),
      h("td", null, h("code", { class: f.secret && !f.value ? "masked" : "" }, fieldValue(f)),
        f.value ? copyButton(`Copy ${f.label}`, () => absolute(f.value)) : null))));
    render(s.setupFields);
    const revealStatus = h("span", { class: "status", role: "status" });
    const hasSecret = s.setupFields.some((f) => f.secret);
    let reveal: HTMLElement | null = null;
    if (hasSecret && api.scope === "admin") {
      const button = h("button", { type: "button", class: "reveal", "aria-label": `Reveal credentials of ${s.name}` }, "Reveal credentials");
      button.addEventListener("click", async () => {
        try {
          const r = await api.sources.getSourceCredentials({ source: s.name });
          render(r.setupFields);
          button.hidden = true;
          revealStatus.textContent = "Credentials shown. They are secrets: do not share this screen.";
        } catch (e) {
          revealStatus.textContent = `Could not reveal: ${message(e)}`;
        }
      });
      reveal = h("div", { class: "toolbar" }, button, revealStatus);
    } else if (hasSecret) {
      reveal = h("p", { class: "help" }, "Credentials are masked; an admin token can reveal them.");
    }
    const st = s.stats!;
    const counts: [string, bigint][] = [["accepted", st.accepted], ["duplicate", st.duplicate], ["quarantined", st.quarantined],
      ["unauthenticated", st.unauthenticated], ["rate limited", st.rateLimited], ["unavailable", st.unavailable]];
    const err = st.lastError;
    return h("article", { class: "card", "data-source": s.name },
      h("h2", null, `${s.name} · ${s.vendorTitle}`),
      h("p", null, "Webhook URL: ", h("code", { class: "url" }, webhookURL(s)), " · auth: ", enumName(SourceAuthScheme, s.authScheme),
        s.rateLimit ? ` · limit ${s.rateLimit}/s` : ""),
      h("h3", null, `At ${s.vendorTitle}: ${s.setupLocation}`),
      h("div", { class: "scroll" }, h("table", { class: "setup" }, h("caption", { class: "visually-hidden" }, `What to enter at ${s.vendorTitle}`), fields)),
      reveal,
      h("h3", null, "Requests"),
      h("ul", { class: "counts" }, counts.map(([k, v]) => h("li", null, h("span", { class: "n" }, v.toString()), ` ${k}`))),
      h("p", null, "Last request: ", time(date(st.lastRequestTime))),
      h("p", { class: err ? "last-error" : "" }, "Last error: ", err ? [time(date(err.time)), ` ${err.outcome}: ${err.message}`] : "none"),
      h("details", null, h("summary", null, "Send a sample webhook"), codeBlock(`Commands for ${s.name}`, sendCommands(s))));
  }

  void (async () => {
    try {
      const resp = await api.sources.listSources({});
      replace(list, resp.sources.length === 0
        ? h("p", { class: "empty" }, "No sources are configured. Add one under ", h("code", null, "sources:"), " in the config.")
        : resp.sources.map(card));
    } catch (e) {
      replace(list, h("p", { class: "error", role: "alert" }, `Could not list sources: ${message(e)}`));
    }
  })();
};
