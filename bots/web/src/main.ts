/**
 * The page: connects to the bot over SmallWebRTC, plays its voice, takes typed
 * text, and shows the connection state, the conversation as text and the tool calls.
 *
 * URL options: `?autoconnect=1` connects on load; `?video=1` shows the camera
 * and screen-share buttons even when the bot does not announce video input.
 */
import "./style.css";

import {
  PipecatClient,
  type BotReadyData,
  type DeviceError,
  type Participant,
  type RTVIMessage,
  type TransportState,
} from "@pipecat-ai/client-js";
import {
  SmallWebRTCTransport,
  type SmallWebRTCTransportConstructorOptions,
} from "@pipecat-ai/small-webrtc-transport";

import { Conversation, applyMessage, type ToolView, type TurnView } from "./conversation";
import { AudioLevels } from "./levels";
import { renderTools, renderTranscript } from "./render";
import { sessionToken } from "./token";
import { Reconnector, conversationId, newConversation, watchLiveness } from "./reconnect";
import { LocalMediaManager } from "./media";
import { Composer } from "./composer";
import { StatusLine, lostModel, type DisplayState } from "./status";

/** The test hook on `window.__agent`. */
interface AgentDebug {
  state: DisplayState;
  transportState: TransportState;
  events: string[];
  transcript: TurnView[];
  tools: ToolView[];
  errors: string[];
  audioLevel(): number;
  micLevel(): number;
  client: PipecatClient;
  conversationId: string;
  reconnects: number;
  connect(): Promise<void>;
  disconnect(): Promise<void>;
}

declare global {
  interface Window {
    __agent: AgentDebug;
  }
}

/** Sees every RTVI message before the client dispatches it. */
class ObservedClient extends PipecatClient {
  onRawMessage: ((ev: RTVIMessage) => void) | null = null;

  protected override handleMessage(ev: RTVIMessage): void {
    this.onRawMessage?.(ev);
    super.handleMessage(ev);
  }
}

const MAX_EVENTS = 10000;
const params = new URLSearchParams(location.search);
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const ui = {
  state: $<HTMLSpanElement>("state"),
  connect: $<HTMLButtonElement>("connect"),
  disconnect: $<HTMLButtonElement>("disconnect"),
  mute: $<HTMLButtonElement>("mute"),
  camera: $<HTMLButtonElement>("camera"),
  screen: $<HTMLButtonElement>("screen"),
  banner: $<HTMLDivElement>("banner"),
  error: $<HTMLDivElement>("error"),
  transcript: $<HTMLOListElement>("transcript"),
  composer: $<HTMLFormElement>("composer"),
  message: $<HTMLInputElement>("message"),
  send: $<HTMLButtonElement>("send"),
  messageHint: $<HTMLElement>("message-hint"),
  tools: $<HTMLOListElement>("tools"),
  notices: $<HTMLOListElement>("notices"),
  micLevel: $<HTMLMeterElement>("mic-level"),
  botLevel: $<HTMLMeterElement>("bot-level"),
  preview: $<HTMLVideoElement>("preview"),
  audio: $<HTMLAudioElement>("bot-audio"),
};

// ---- audio ----

const levels = new AudioLevels();

/** Plays the bot's voice and measures it. */
function playBot(track: MediaStreamTrack): void {
  if (levels.measures("bot", track)) return;
  // Chrome only feeds a remote track to WebAudio while a media element plays
  // it, so the <audio> element comes first.
  ui.audio.srcObject = new MediaStream([track]);
  void ui.audio.play().catch(() => notice("Click anywhere to hear the bot."));
  levels.analyse("bot", track);
}

/**
 * The transport reports a remote track only when it unmutes. A peer connection
 * rebuilt after an ICE failure can bring a track that never does, so the
 * receivers are checked as well.
 */
function syncBotAudio(): void {
  const pc = (transport as unknown as { pc: RTCPeerConnection | null }).pc;
  const track = pc?.getReceivers().find((r) => r.track.kind === "audio")?.track;
  if (track && track.readyState === "live" && !track.muted) playBot(track);
}

// ---- client ----

const media = new LocalMediaManager();
const transport = new SmallWebRTCTransport({
  waitForICEGathering: false,
  // The default media manager (Daily's) loads code from a CDN; see media.ts.
  mediaManager: media as unknown as SmallWebRTCTransportConstructorOptions["mediaManager"],
});
media.attach(transport);

let transportState: TransportState = "disconnected";
let botReady = false;
let reconnecting = false;
let fatal: string | null = null;
let busy: string | null = null;
let connecting = false;
/** The user pressed Disconnect: nothing reconnects until they connect again. */
let leftByUser = true;
/** The transport was connected since the last (re)connect began: a drop is worth a reconnect. */
let wasConnected = false;
/** The page is leaving its server to resume the conversation on another (`moveNow`). */
let moving = false;
const status = new StatusLine(ui.banner);
const reconnects = new Reconnector(
  () => void connect({ reconnect: true }),
  (why, attempt) => {
    window.__agent.reconnects += 1;
    window.__agent.events.push(`reconnect:${why}`);
    status.pageReconnecting = { why, attempt };
    update();
  },
  (why) => {
    status.clear();
    fatal = `Could not reconnect (${why}). Press Connect to try again.`;
    update();
  },
);
const token = sessionToken();
let videoCapable = params.get("video") === "1";
let screenCapable = videoCapable;

const conversation = new Conversation(() => scheduleRender());
const composer = new Composer(ui.composer, ui.message, ui.send, ui.messageHint, async (text) => {
  window.__agent.events.push("send-text");
  conversation.userTyped(text);
  try {
    await client.sendText(text);
  } catch (e) {
    const message = `Could not send your message: ${e instanceof Error ? e.message : String(e)}`;
    window.__agent.errors.push(message);
    notice(message);
  }
});

const client = new ObservedClient({
  transport,
  enableMic: true,
  enableCam: false,
  callbacks: {
    onTransportStateChanged: (state) => {
      transportState = state;
      if (state === "connected" || state === "ready") wasConnected = true;
      if (state === "disconnected" || state === "error") {
        botReady = false;
        reconnecting = false;
        status.modelReconnecting = null;
        if (wasConnected && !leftByUser && !fatal) reconnects.schedule("the connection dropped");
      }
      update();
    },
    onBotReady: (data: BotReadyData) => {
      botReady = true;
      reconnects.reset();
      status.clear();
      const caps = (data as { capabilities?: Record<string, boolean | null> }).capabilities;
      if (caps?.video_in === true) videoCapable = true;
      if (caps?.screen_in === true || (caps?.screen_in == null && caps?.video_in === true)) {
        screenCapable = true;
      }
      update();
    },
    onBotDisconnected: () => notice("The bot left the session."),
    onError: (message: RTVIMessage) => {
      const data = (message.data ?? {}) as { error?: string; message?: string; fatal?: boolean };
      let text = data.error ?? data.message ?? "Unknown error";
      // A failed POST /start comes as an error-response from the client itself.
      if (message.type === "error-response") text = `Could not start the bot: ${text}`;
      window.__agent.errors.push(text);
      // `connect()` tells a refused start (busy, say) from a failure once it has the status.
      if (message.type === "error-response" && connecting) return;
      if (data.fatal) {
        fatal = text;
      } else {
        notice(text);
      }
      update();
    },
    onDeviceError: (error: DeviceError) => {
      notice(`${error.devices.join(", ")}: ${error.type}${error.message ? ` (${error.message})` : ""}`);
    },
    onScreenShareError: (message: string) => notice(`Screen share: ${message}`),
    onTrackStarted: (track: MediaStreamTrack, participant?: Participant) => {
      if (participant?.local) {
        if (track.kind === "audio") levels.analyse("mic", track);
        else showPreview(track);
        update();
        return;
      }
      if (track.kind === "audio") playBot(track);
    },
    onTrackStopped: (track: MediaStreamTrack, participant?: Participant) => {
      if (participant?.local && track.kind === "video") hidePreview(track);
      update();
    },
    onScreenTrackStarted: (track: MediaStreamTrack) => {
      showPreview(track);
      update();
    },
    onScreenTrackStopped: (track: MediaStreamTrack) => {
      hidePreview(track);
      update();
    },
  },
});

media.onScreenShareEnded = () => {
  // Keeps the transport's track status (sent to the bot) in step.
  if (client.isSharingScreen) void client.enableScreenShare(false);
  update();
};

client.onRawMessage = (ev: RTVIMessage) => {
  const events = window.__agent.events;
  events.push(ev.type);
  if (events.length > MAX_EVENTS) events.splice(0, events.length - MAX_EVENTS);
  const data = (ev.data ?? {}) as Record<string, unknown>;
  if (ev.type === "server-message") onServerMessage(data);
  else applyMessage(conversation, ev.type, data);
};

function onServerMessage(data: Record<string, unknown>): void {
  switch (data.type) {
    case "service-reconnecting": {
      reconnecting = true;
      status.modelReconnecting = lostModel(data);
      update();
      break;
    }
    case "service-reconnected":
      reconnecting = false;
      status.modelReconnecting = null;
      update();
      break;
    case "tool-activity":
      conversation.toolActivity(data);
      break;
    case "session-moving":
      // The server is restarting: leave it now and resume the conversation on another one.
      status.moving = str(data.message) ?? "Moving the conversation to another server…";
      void moveNow("the server asked the page to move");
      break;
  }
}

async function moveNow(why: string): Promise<void> {
  moving = true;
  wasConnected = false;
  leftByUser = false;
  reconnects.reset();
  try {
    await client.disconnect();
  } catch {
    // Already gone: the reconnect below starts a new connection either way.
  }
  moving = false;
  reconnects.schedule(why);
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v ? v : undefined;
}

// ---- actions ----


async function connect(options: { reconnect?: boolean } = {}): Promise<void> {
  const live = ["connecting", "connected", "ready"].includes(displayState());
  if (connecting || (live && !options.reconnect)) return;
  if (!options.reconnect) reconnects.reset();
  levels.context();
  connecting = true;
  leftByUser = false;
  wasConnected = false;
  fatal = null;
  busy = null;
  update();
  let retry = false;
  try {
    await client.startBotAndConnect({
      endpoint: "/start",
      // The transport sends the same headers with the offer and its ICE patches.
      headers: token ? new Headers({ Authorization: `Bearer ${token}` }) : undefined,
      requestData: {
        transport: "webrtc",
        enableDefaultIceServers: false,
        body: { conversation_id: window.__agent.conversationId },
      },
    });
  } catch (e) {
    const status = (e as { status?: number }).status;
    const message = e instanceof Error ? e.message : String(e);
    if (status === 404 && /conversation/i.test(message)) {
      // Not a conversation of ours (another user's token now, or it expired): a new one.
      window.__agent.conversationId = newConversation();
      retry = true;
    } else if (options.reconnect && (status === undefined || status >= 500 || status === 429)) {
      // A replica going away, or the fleet busy for a moment: keep trying with backoff.
      retry = true;
    } else if (status === 503 || status === 429) {
      // Full, or too many of ours: not an error of the page, and worth trying again.
      fatal = null;
      busy = message;
    } else {
      fatal ??= `Could not connect: ${message}`;
    }
    window.__agent.errors.push(busy ?? fatal ?? message);
  } finally {
    connecting = false;
    update();
  }
  if (retry) reconnects.schedule("the server could not take the conversation yet");
}

async function disconnect(): Promise<void> {
  leftByUser = true;
  reconnects.cancel();
  status.clear();
  await client.disconnect();
  update();
}

ui.connect.addEventListener("click", () => void connect());
watchLiveness(
  () => (transport as unknown as { pc: RTCPeerConnection | null }).pc,
  () => (transportState === "connected" || transportState === "ready") && botReady && !leftByUser,
  () => void moveNow("the connection was lost"),
);
ui.disconnect.addEventListener("click", () => void disconnect());
ui.mute.addEventListener("click", () => {
  client.enableMic(!client.isMicEnabled);
  update();
});
ui.camera.addEventListener("click", () => {
  client.enableCam(!client.isCamEnabled);
  update();
});
ui.screen.addEventListener("click", () => {
  void client.enableScreenShare(!client.isSharingScreen);
  update();
});
// Autoplay rules: a click anywhere lets a blocked <audio> and AudioContext start.
document.addEventListener("pointerdown", () => {
  levels.resume();
  if (ui.audio.srcObject && ui.audio.paused) void ui.audio.play().catch(() => undefined);
});

// ---- rendering ----

function displayState(): DisplayState {
  if (reconnects.waiting || (connecting && reconnects.active)) return "reconnecting";
  if (busy && !connecting) return "busy";
  // A start that fails puts the transport in "error" before the page knows why (busy, say).
  if (fatal || (transportState === "error" && !connecting)) return "error";
  switch (transportState) {
    case "connected":
    case "ready":
      if (reconnecting) return "reconnecting";
      return botReady ? "ready" : "connected";
    case "initializing":
    case "initialized":
    case "authenticating":
    case "authenticated":
    case "connecting":
      return "connecting";
    default:
      if (connecting) return "connecting";
      // Going down on its own (a drop, or leaving to move): the reconnect is on its way.
      return moving || (wasConnected && !leftByUser) ? "reconnecting" : "disconnected";
  }
}

function update(): void {
  const state = displayState();
  const agent = window.__agent;
  agent.state = state;
  agent.transportState = transportState;
  ui.state.textContent = state;
  ui.state.dataset.state = state;

  const live = state === "connecting" || state === "connected" || state === "ready" || state === "reconnecting";
  ui.connect.hidden = live;
  ui.connect.disabled = connecting;
  ui.disconnect.hidden = !live;

  const micOn = client.isMicEnabled;
  ui.mute.textContent = micOn ? "Mute" : "Unmute";
  ui.mute.setAttribute("aria-pressed", String(!micOn));

  ui.camera.hidden = !videoCapable;
  ui.camera.textContent = client.isCamEnabled ? "Stop camera" : "Camera";
  ui.camera.setAttribute("aria-pressed", String(client.isCamEnabled));
  ui.screen.hidden = !screenCapable;
  ui.screen.textContent = client.isSharingScreen ? "Stop sharing" : "Share screen";
  ui.screen.setAttribute("aria-pressed", String(client.isSharingScreen));

  composer.enabled = state === "ready";
  status.render(state, busy);
  ui.error.hidden = !fatal;
  ui.error.textContent = fatal ?? "";
}

let renderQueued = false;
function scheduleRender(): void {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderTranscript(ui.transcript, conversation.transcript);
    renderTools(ui.tools, conversation.tools);
  });
}

function notice(text: string): void {
  const li = document.createElement("li");
  li.textContent = text;
  ui.notices.prepend(li);
  while (ui.notices.children.length > 5) ui.notices.lastElementChild?.remove();
  (ui.notices.closest("section") as HTMLElement).hidden = false;
}

function showPreview(track: MediaStreamTrack): void {
  ui.preview.srcObject = new MediaStream([track]);
  ui.preview.hidden = false;
}

function hidePreview(track: MediaStreamTrack): void {
  const shown = (ui.preview.srcObject as MediaStream | null)?.getVideoTracks()[0];
  if (shown && shown.id !== track.id) return;
  const other = client.tracks().local.screenVideo ?? client.tracks().local.video;
  if (other && other.id !== track.id && other.readyState === "live") {
    showPreview(other);
    return;
  }
  ui.preview.srcObject = null;
  ui.preview.hidden = true;
}

setInterval(() => {
  if (transportState === "connected" || transportState === "ready") syncBotAudio();
  ui.botLevel.value = Math.min(1, levels.rms("bot") * 4);
  ui.micLevel.value = client.isMicEnabled ? Math.min(1, levels.rms("mic") * 4) : 0;
}, 100);

window.__agent = {
  state: "disconnected",
  transportState,
  events: [],
  transcript: conversation.transcript,
  tools: conversation.tools,
  errors: [],
  audioLevel: () => levels.rms("bot"),
  micLevel: () => levels.rms("mic"),
  client,
  conversationId: conversationId(),
  reconnects: 0,
  connect: () => connect(),
  disconnect,
};
update();

if (params.get("autoconnect") === "1") void connect();
