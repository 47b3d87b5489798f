/**
 * The conversation as text, and the tool calls, built from RTVI messages.
 *
 * Pipecat reports the same words over several messages: a user turn comes as
 * `user-transcription` pieces and as `user-llm-text`; a bot turn as
 * `bot-llm-text` tokens, `bot-transcription` sentences and `bot-output`
 * segments. Each source is gathered on its own for the turn, and the turn
 * shows the longest, so nothing is doubled and streaming text shows at once.
 */

export type Role = "user" | "bot";

/** Shown for calls whose name Pipecat leaves out (its default report level, NONE). */
export const UNNAMED = "function call";

/** What the page shows and `window.__agent.transcript` holds. */
export interface TurnView {
  role: Role;
  text: string;
  interrupted: boolean;
}

export type ToolStatus = "started" | "running" | "done" | "cancelled" | "error";

/** One tool call, as `window.__agent.tools` holds it. */
export interface ToolView {
  id: string | null;
  name: string;
  status: ToolStatus;
  startedAt: number;
  durationMs: number | null;
  detail: string;
  /** A NON_BLOCKING call: the bot goes on talking while it runs. */
  background: boolean;
}

interface Turn {
  view: TurnView;
  /** Gathered text per source ("llm", "transcription", "output", ...). */
  sources: Map<string, string>;
  /** bot-output segments, which are resent whole as they are spoken. */
  segments: Map<number, string>;
  open: boolean;
}

/** Joins pieces of speech without doubling or losing the space between them. */
export function joinText(a: string, b: string): string {
  if (!a) return b.trimStart();
  if (!b) return a;
  if (/\s$/.test(a) || /^[\s.,!?;:)\]}'’"]/.test(b)) return a + b;
  return `${a} ${b}`;
}

export class Conversation {
  readonly transcript: TurnView[] = [];
  readonly tools: ToolView[] = [];
  private turns: Turn[] = [];
  private botSpeaking = false;
  private botResponding = false;
  /** The bot turn a typed line is about to cut off: its words still in flight go to it, and
   * the interruption that follows marks it (not a fragment drawn after the typed line). */
  private cutOff: Turn | null = null;

  constructor(
    private readonly onChange: () => void,
    private readonly now: () => number = () => performance.now(),
  ) {}

  // ---- user ----

  userTranscription(text: string, final: boolean): void {
    if (!text) return;
    const turn = this.turnFor("user");
    // Interim pieces are shown until the final one replaces them.
    const done = turn.sources.get("transcription") ?? "";
    turn.sources.set("transcription:interim", final ? "" : text);
    if (final) turn.sources.set("transcription", joinText(done, text));
    this.refresh(turn, ["transcription", "transcription:interim"]);
  }

  /** The user typed `text` and sent it: a line of its own at once, before the bot hears it. */
  userTyped(text: string): void {
    const last = this.turns[this.turns.length - 1];
    const active = this.botSpeaking || this.botResponding;
    this.cutOff = active && last?.view.role === "bot" ? last : null;
    const turn = this.newTurn("user");
    turn.sources.set("typed", text);
    turn.open = false; // speech after it is a turn of its own
    this.refresh(turn);
  }

  userLlmText(text: string): void {
    if (!text) return;
    // Pipecat echoes typed text as `user-llm-text` (it is the context's last message): the
    // typed line already shows it.
    const typed = this.turns.find(
      (t) => t.view.role === "user" && t.sources.get("typed") === text.trim() && !t.sources.has("llm"),
    );
    if (typed) {
      typed.sources.set("llm", text);
      return;
    }
    // Pipecat sends the user's words as `user-llm-text` once the bot starts answering, after
    // the transcription drew the turn: that is the same turn, not a new one after the answer.
    const spoken = [...this.turns].reverse().find((t) => t.view.role === "user");
    const late = spoken && spoken.sources.has("transcription") && !spoken.sources.has("llm");
    const turn = late ? spoken : this.turnFor("user");
    turn.sources.set("llm", joinText(turn.sources.get("llm") ?? "", text));
    this.refresh(turn);
  }

  userStartedSpeaking(): void {
    this.closeBotTurn();
  }

  // ---- bot ----

  botLlmStarted(): void {
    this.cutOff = null;
    this.botResponding = true;
    this.closeBotTurn();
  }

  botLlmStopped(): void {
    this.botResponding = false;
  }

  botStartedSpeaking(): void {
    this.botSpeaking = true;
  }

  botStoppedSpeaking(): void {
    this.botSpeaking = false;
  }

  /** Streamed LLM tokens: concatenated as they come. */
  botLlmText(text: string): void {
    if (!text) return;
    const turn = this.turnFor("bot");
    turn.sources.set("llm", (turn.sources.get("llm") ?? "") + text);
    this.refresh(turn);
  }

  /** Sentence-aggregated bot speech. */
  botTranscription(text: string): void {
    if (!text) return;
    const turn = this.turnFor("bot");
    turn.sources.set("transcription", joinText(turn.sources.get("transcription") ?? "", text));
    this.refresh(turn);
  }

  /** bot-output: a segment (by segment_id) is resent whole as it is spoken. */
  botOutput(text: string, segmentId: number | undefined): void {
    if (!text) return;
    const turn = this.turnFor("bot");
    if (segmentId === undefined || segmentId === null) {
      turn.sources.set("output:loose", joinText(turn.sources.get("output:loose") ?? "", text));
    } else {
      turn.segments.set(segmentId, text);
    }
    let joined = "";
    for (const seg of turn.segments.values()) joined = joinText(joined, seg);
    turn.sources.set("output", joinText(joined, turn.sources.get("output:loose") ?? ""));
    this.refresh(turn);
  }

  /** bot-interrupted: Pipecat sends it for every interruption, so only a bot
   * that was still responding or speaking has its turn marked. */
  botInterrupted(): void {
    const wasActive = this.botSpeaking || this.botResponding;
    this.botSpeaking = false;
    this.botResponding = false;
    const cut = this.cutOff;
    this.cutOff = null;
    if (!wasActive && !cut) return;
    const turn = cut ?? [...this.turns].reverse().find((t) => t.view.role === "bot");
    if (!turn || turn.view.interrupted) return;
    turn.view.interrupted = true;
    turn.open = false;
    this.onChange();
  }

  // ---- tools ----

  /** llm-function-call-started; carries no id, and no name at Pipecat's default report level. */
  toolStarted(name: string | undefined): void {
    this.tools.push({
      id: null,
      name: name ?? UNNAMED,
      status: "started",
      startedAt: this.now(),
      durationMs: null,
      detail: "",
      background: false,
    });
    this.onChange();
  }

  toolInProgress(id: string, name: string | undefined, args: unknown): void {
    const tool = this.findTool(id, name) ?? this.newTool(id, name);
    tool.status = "running";
    if (name) tool.name = name;
    if (args && typeof args === "object" && Object.keys(args).length > 0) {
      tool.detail = JSON.stringify(args);
    }
    this.onChange();
  }

  toolStopped(id: string, name: string | undefined, cancelled: boolean, result: unknown): void {
    const tool = this.findTool(id, name) ?? this.newTool(id, name);
    tool.status = cancelled ? "cancelled" : "done";
    if (name) tool.name = name;
    tool.durationMs ??= Math.round(this.now() - tool.startedAt);
    if (result !== undefined && result !== null) tool.detail = summarize(result);
    this.onChange();
  }

  /** A server-message `{type: "tool-activity", ...}` from the bot. */
  toolActivity(data: Record<string, unknown>): void {
    const id = str(data.tool_call_id ?? data.id);
    const name = str(data.name ?? data.function_name ?? data.tool);
    const tool =
      (id ? this.findTool(id, name) : this.lastActive(name)) ?? this.newTool(id ?? null, name);
    if (name) tool.name = name;
    if (data.background === true) tool.background = true;
    const status = str(data.status ?? data.state ?? data.phase ?? data.event);
    if (status) tool.status = toolStatus(status);
    const ms = num(data.duration_ms) ?? secsToMs(num(data.duration_s ?? data.duration));
    if (ms !== null) tool.durationMs = Math.round(ms);
    else if (tool.status !== "started" && tool.status !== "running") {
      tool.durationMs ??= Math.round(this.now() - tool.startedAt);
    }
    const detail = data.detail ?? data.message ?? data.result ?? data.error;
    if (detail !== undefined && detail !== null) tool.detail = summarize(detail);
    this.onChange();
  }

  // ---- internals ----

  private turnFor(role: Role): Turn {
    if (role === "bot" && this.cutOff) return this.cutOff;
    const last = this.turns[this.turns.length - 1];
    if (last && last.view.role === role && last.open) return last;
    return this.newTurn(role);
  }

  private newTurn(role: Role): Turn {
    if (role === "user") this.closeBotTurn();
    const turn: Turn = {
      view: { role, text: "", interrupted: false },
      sources: new Map(),
      segments: new Map(),
      open: true,
    };
    this.turns.push(turn);
    this.transcript.push(turn.view);
    return turn;
  }

  private closeBotTurn(): void {
    const last = this.turns[this.turns.length - 1];
    if (last && last.view.role === "bot" && last.view.text) last.open = false;
  }

  /** Shows the longest source; `joined` sources are shown concatenated. */
  private refresh(turn: Turn, joined: string[] = []): void {
    let best = "";
    for (const [key, text] of turn.sources) {
      if (joined.includes(key) || key.endsWith(":loose")) continue;
      if (text.length > best.length) best = text;
    }
    if (joined.length) {
      const together = joined.reduce((acc, key) => joinText(acc, turn.sources.get(key) ?? ""), "");
      if (together.length > best.length) best = together;
    }
    turn.view.text = best;
    this.onChange();
  }

  private findTool(id: string | null, name: string | undefined): ToolView | undefined {
    if (id) {
      const byId = this.tools.find((t) => t.id === id);
      if (byId) return byId;
    }
    // A call announced by `-started` has no id yet: take the oldest such one.
    const pending = this.tools.find(
      (t) => t.id === null && t.status === "started" && (!name || t.name === UNNAMED || t.name === name),
    );
    if (pending && id) pending.id = id;
    return pending;
  }

  /** The latest unfinished call of that name (for messages that carry no id). */
  private lastActive(name: string | undefined): ToolView | undefined {
    return [...this.tools]
      .reverse()
      .find(
        (t) =>
          (t.status === "started" || t.status === "running") &&
          (!name || t.name === name || (t.id === null && t.name === UNNAMED)),
      );
  }

  private newTool(id: string | null, name: string | undefined): ToolView {
    const tool: ToolView = {
      id,
      name: name || UNNAMED,
      status: "started",
      startedAt: this.now(),
      durationMs: null,
      detail: "",
      background: false,
    };
    this.tools.push(tool);
    return tool;
  }
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v ? v : undefined;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function secsToMs(v: number | null): number | null {
  return v === null ? null : v * 1000;
}

function toolStatus(s: string): ToolStatus {
  const v = s.toLowerCase();
  if (["started", "start", "queued", "scheduled"].includes(v)) return "started";
  if (["running", "in-progress", "in_progress", "progress", "update"].includes(v)) return "running";
  if (
    ["cancelled", "canceled", "timeout", "timed_out", "timed-out"].includes(v) ||
    v.startsWith("cancelled_by_")
  )
    return "cancelled";
  if (["error", "failed", "failure", "invalid_arguments", "refused_repeat"].includes(v))
    return "error";
  return "done";
}

function summarize(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 160 ? `${s.slice(0, 157)}...` : s;
}

/** What each RTVI message the bot sends does to the conversation's view. */
export function applyMessage(
  conversation: Conversation,
  type: string,
  data: Record<string, unknown>,
): void {
  const text = typeof data.text === "string" ? data.text : "";
  switch (type) {
    case "user-transcription":
      conversation.userTranscription(text, data.final !== false);
      break;
    case "user-llm-text":
      conversation.userLlmText(text);
      break;
    case "user-started-speaking":
      conversation.userStartedSpeaking();
      break;
    case "bot-llm-started":
      conversation.botLlmStarted();
      break;
    case "bot-llm-stopped":
      conversation.botLlmStopped();
      break;
    case "bot-started-speaking":
      conversation.botStartedSpeaking();
      break;
    case "bot-stopped-speaking":
      conversation.botStoppedSpeaking();
      break;
    case "bot-llm-text":
      conversation.botLlmText(text);
      break;
    case "bot-transcription":
      conversation.botTranscription(text);
      break;
    case "bot-output":
      conversation.botOutput(text, typeof data.segment_id === "number" ? data.segment_id : undefined);
      break;
    case "bot-interrupted":
      conversation.botInterrupted();
      break;
    case "llm-function-call-started":
      conversation.toolStarted(str(data.function_name));
      break;
    case "llm-function-call-in-progress":
      conversation.toolInProgress(
        str(data.tool_call_id) ?? "",
        str(data.function_name),
        data.arguments,
      );
      break;
    case "llm-function-call-stopped":
      conversation.toolStopped(
        str(data.tool_call_id) ?? "",
        str(data.function_name),
        data.cancelled === true,
        data.result,
      );
      break;
  }
}
