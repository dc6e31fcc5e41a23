// A small DOM builder: the inspector renders with plain elements, no
// framework and no innerHTML, so text from the server is always text.

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/** h builds an element: attributes (on* keys are listeners) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (v === true) {
      el.setAttribute(k, "");
    } else {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

/** append adds children, flattening arrays and skipping empty values. */
export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** replace empties el and fills it with children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** time renders a timestamp in local time, with the ISO form for machines. */
export function time(d: Date | undefined): HTMLElement | string {
  if (!d) return "—";
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  // The date can be left out on narrow screens (style.css); the time cannot.
  return h("time", { datetime: d.toISOString(), title: d.toISOString() },
    h("span", { class: "date" }, `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `),
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`);
}

/** prettyBody shows a request body readably: JSON indented, else as it is. */
export function prettyBody(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** codeBlock is a scrollable, labelled block of preformatted text. */
export function codeBlock(label: string, text: string, id?: string): HTMLElement {
  return h("pre", { class: "code", tabindex: 0, "aria-label": label, id }, h("code", null, text));
}

/** copyButton copies text to the clipboard and says whether it worked. */
export function copyButton(label: string, text: () => string): HTMLElement {
  const status = h("span", { class: "copy-status", role: "status" });
  const button = h("button", {
    type: "button",
    onclick: async () => {
      // One "Copied" at a time among buttons side by side.
      button.closest(".toolbar")?.querySelectorAll(".copy-status").forEach((el) => { el.textContent = ""; });
      try {
        await navigator.clipboard.writeText(text());
        status.textContent = "Copied";
      } catch {
        status.textContent = "Select the command below to copy it";
      }
    },
  }, label);
  return h("span", { class: "copy" }, button, status);
}
