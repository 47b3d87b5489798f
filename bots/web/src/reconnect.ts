/**
 * What keeps a conversation going when its connection does not: the conversation id this tab
 * keeps (sent with every `/start`, so whichever replica answers resumes it), and the backoff
 * between attempts to reconnect after the bot's connection dropped or the server asked the
 * page to move.
 */

const CONVERSATION_KEY = "gemini-live-agent.conversation";
const CONVERSATION_ID = /^[A-Za-z0-9_-]{16,64}$/;

/** 16 random bytes, URL-safe base64 without padding (22 characters). */
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** This tab's conversation id: kept in sessionStorage, so a reload goes on with it. */
export function conversationId(): string {
  const kept = sessionStorage.getItem(CONVERSATION_KEY);
  if (kept && CONVERSATION_ID.test(kept)) return kept;
  return newConversation();
}

/** Start a new conversation in this tab (the server did not know the old one as ours). */
export function newConversation(): string {
  const id = randomId();
  sessionStorage.setItem(CONVERSATION_KEY, id);
  return id;
}

export const MAX_RECONNECT_ATTEMPTS = 12;

/**
 * The wait before reconnect attempt `attempt` (0 first): at once for the first, then doubling
 * from a quarter second up to 8 s, with ±20 % jitter so a fleet's clients do not come back in
 * step after a replica dies.
 */
export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  if (attempt <= 0) return 0;
  const base = Math.min(8000, 250 * 2 ** (attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** Reconnect attempts after a drop: one waiting at a time, with backoff, a bounded number. */
export class Reconnector {
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly reconnect: () => void,
    /** An attempt is waiting: why, and its number (from 1). */
    private readonly scheduled: (why: string, attempt: number) => void,
    private readonly gaveUp: (why: string) => void,
  ) {}

  /** An attempt is waiting, or one began after a drop. */
  get active(): boolean {
    return this.timer !== null || this.attempt > 0;
  }

  get waiting(): boolean {
    return this.timer !== null;
  }

  schedule(why: string): void {
    if (this.timer !== null) return;
    if (this.attempt >= MAX_RECONNECT_ATTEMPTS) {
      this.attempt = 0;
      this.gaveUp(why);
      return;
    }
    const delay = reconnectDelayMs(this.attempt);
    this.attempt += 1;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reconnect();
    }, delay);
    this.scheduled(why, this.attempt); // `waiting` already holds, for what it draws
  }

  /** Connected again (or the user connected by hand): the next drop starts from scratch. */
  reset(): void {
    this.attempt = 0;
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.attempt = 0;
  }
}

/**
 * A dead replica sends nothing, and ICE takes many seconds to say so: when no audio from the
 * bot has arrived for `limitMs` (it sends silence between answers), the connection is lost.
 */
export function watchLiveness(
  pc: () => RTCPeerConnection | null,
  live: () => boolean,
  lost: () => void,
  limitMs = 3000,
): void {
  let lastBytes = -1;
  let lastProgress = Date.now();
  setInterval(() => {
    const peer = pc();
    if (!live() || !peer) {
      lastBytes = -1;
      lastProgress = Date.now();
      return;
    }
    void peer.getStats().then((stats) => {
      let bytes = 0;
      stats.forEach((report) => {
        if (report.type === "inbound-rtp" && report.kind === "audio") {
          bytes += report.bytesReceived ?? 0;
        }
      });
      if (bytes !== lastBytes) {
        lastBytes = bytes;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > limitMs) {
        lastBytes = -1;
        lastProgress = Date.now();
        lost();
      }
    });
  }, 1000);
}
