/**
 * The status line: while the conversation cannot go on (the page or the bot is reconnecting,
 * the conversation is moving to another server, the server is too busy to take it), it says
 * so in words. The state pill's colour alone tells nothing to someone who cannot tell colours
 * apart or hears the page through a screen reader; the line is a `role="status"` region.
 */
import { MAX_RECONNECT_ATTEMPTS } from "./reconnect";

export type DisplayState =
  | "disconnected"
  | "connecting"
  | "connected"
  | "ready"
  | "reconnecting"
  | "busy"
  | "error";

export type StatusKind = "reconnecting" | "moving" | "busy";

/** What the line says: a one-word label, then the detail. */
export interface Status {
  kind: StatusKind;
  label: string;
  text: string;
}

/** "the connection dropped" → "The connection dropped". */
function sentence(text: string): string {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

/** What a `service-reconnecting` server message says, in the line's words. */
export function lostModel(data: Record<string, unknown>): string {
  const service = typeof data.service === "string" && data.service ? data.service : "the model";
  const max = typeof data.max_attempts === "number" ? ` of ${data.max_attempts}` : "";
  const attempt = typeof data.attempt === "number" ? ` (attempt ${data.attempt}${max})` : "";
  return `The bot lost its connection to ${service}; trying again${attempt}…`;
}

export class StatusLine {
  /** What the bot says while it reconnects to the model (`service-reconnecting`). */
  modelReconnecting: string | null = null;
  /** Why the page is reconnecting itself, and which attempt is next. */
  pageReconnecting: { why: string; attempt: number } | null = null;
  /** What the server said when it asked the page to move (`session-moving`). */
  moving: string | null = null;

  constructor(private readonly element: HTMLElement) {}

  /** Connected again, or left by the user: nothing is being waited for. */
  clear(): void {
    this.modelReconnecting = null;
    this.pageReconnecting = null;
    this.moving = null;
  }

  /** What the line says in `state` (`busy`: the server's answer to `/start`); null: hidden. */
  status(state: DisplayState, busy: string | null): Status | null {
    if (state === "busy") {
      return { kind: "busy", label: "Busy", text: busy ?? "The assistant is busy. Try again soon." };
    }
    if (state !== "reconnecting") return null;
    if (this.moving) return { kind: "moving", label: "Moving", text: this.moving };
    if (this.pageReconnecting) {
      const { why, attempt } = this.pageReconnecting;
      const text = `${sentence(why)}; trying again (attempt ${attempt} of ${MAX_RECONNECT_ATTEMPTS})…`;
      return { kind: "reconnecting", label: "Reconnecting", text };
    }
    const text = this.modelReconnecting ?? "The connection dropped.";
    return { kind: "reconnecting", label: "Reconnecting", text };
  }

  /** Show what the line says in `state`, changing the region only when the words change. */
  render(state: DisplayState, busy: string | null): void {
    const status = this.status(state, busy);
    this.element.hidden = status === null;
    this.element.dataset.kind = status?.kind ?? "";
    const words = status ? `${status.label}: ${status.text}` : "";
    if (this.element.textContent === words) return;
    this.element.replaceChildren();
    if (!status) return;
    this.element.appendChild(document.createElement("strong")).textContent = `${status.label}:`;
    this.element.append(` ${status.text}`);
  }
}
