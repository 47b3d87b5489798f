/**
 * A media manager for SmallWebRTCTransport built only on the browser's own
 * getUserMedia / getDisplayMedia.
 *
 * The transport's default, DailyMediaManager, opens devices through daily-js,
 * which downloads Daily's call-machine bundle from a CDN and fails offline.
 * WavMediaManager works offline but has no camera or screen share. This class
 * implements the same (structural) MediaManager interface as both: the
 * transport calls initialize/connect/disconnect, the enable* toggles and
 * tracks(); it sends tracks().local.{audio,video,screenVideo} on its three
 * transceivers (audio, camera, screen) when it negotiates.
 *
 * Tracks that start or stop while connected are swapped into the live peer
 * connection with RTCRtpSender.replaceTrack, as the transport itself does
 * for DailyMediaManager's track events.
 */
import {
  DeviceError,
  type DeviceErrorType,
  type Participant,
  type PipecatClientOptions,
  type RTVIEventCallbacks,
  type Tracks,
} from "@pipecat-ai/client-js";

/** Transceiver order fixed by SmallWebRTCTransport.addInitialTransceivers. */
const TRANSCEIVER = { audio: 0, video: 1, screenVideo: 2 } as const;
type LocalKind = keyof typeof TRANSCEIVER;

const LOCAL: Participant = { id: "local", name: "", local: true };

/** The part of SmallWebRTCTransport this class reaches into (not in its .d.ts). */
interface PeerConnectionOwner {
  pc: RTCPeerConnection | null;
}

export class LocalMediaManager {
  private _callbacks: RTVIEventCallbacks = {};
  private _options?: PipecatClientOptions;
  private _micEnabled = true;
  private _camEnabled = false;
  private _screenEnabled = false;
  private _micId: string | undefined;
  private _camId: string | undefined;
  private _selectedMic: MediaDeviceInfo | Record<string, never> = {};
  private _selectedCam: MediaDeviceInfo | Record<string, never> = {};
  private _local: Partial<Record<LocalKind, MediaStreamTrack>> = {};
  private _owner: PeerConnectionOwner | null = null;
  private _watchdog: ReturnType<typeof setInterval> | null = null;
  private _opening: Partial<Record<LocalKind, Promise<void>>> = {};

  /** Called when the user ends a screen share from the browser's own UI. */
  onScreenShareEnded: (() => void) | null = null;

  /** Lets this manager swap tracks into the transport's peer connection. */
  attach(transport: unknown): void {
    this._owner = transport as PeerConnectionOwner;
  }

  // ---- MediaManager interface (see @pipecat-ai/transport-lib) ----

  get supportsScreenShare(): boolean {
    return true;
  }

  setUserAudioCallback(_cb: (data: ArrayBuffer) => void): void {
    // Only used by WebSocket transports; SmallWebRTC sends the track itself.
  }

  setClientOptions(options: PipecatClientOptions, override = false): void {
    if (this._options && !override) return;
    this._options = options;
    this._callbacks = options.callbacks ?? {};
    this._micEnabled = options.enableMic ?? true;
    this._camEnabled = options.enableCam ?? false;
  }

  async initialize(): Promise<void> {
    if (this._micEnabled) await this._startMic();
    if (this._camEnabled) await this._startCam();
    await this._announceDevices();
  }

  async connect(): Promise<void> {
    // A previous disconnect stopped the tracks (the transport stops its senders).
    if (this._micEnabled) await this._startMic();
    if (this._camEnabled) await this._startCam();
    // When ICE fails the transport builds a new peer connection with these tracks,
    // then stops every sender's track on the old one, and so ours. Nothing
    // announces that, so look for ended tracks and reopen them.
    this._watchdog ??= setInterval(() => this._reopenEnded(), 1000);
  }

  async disconnect(): Promise<void> {
    if (this._watchdog) clearInterval(this._watchdog);
    this._watchdog = null;
    for (const kind of Object.keys(this._local) as LocalKind[]) this._stop(kind);
    this._screenEnabled = false;
  }

  async userStartedSpeaking(): Promise<void> {
    // Bot audio is a WebRTC track played by an <audio> element: nothing buffered here.
  }

  bufferBotAudio(_data: ArrayBuffer, _id?: string): void {
    // Only used by WebSocket transports.
  }

  async getAllMics(): Promise<MediaDeviceInfo[]> {
    return this._devices("audioinput");
  }

  async getAllCams(): Promise<MediaDeviceInfo[]> {
    return this._devices("videoinput");
  }

  async getAllSpeakers(): Promise<MediaDeviceInfo[]> {
    return this._devices("audiooutput");
  }

  async updateMic(micId: string): Promise<void> {
    this._micId = micId || undefined;
    if (this._local.audio) {
      this._stop("audio");
      await this._startMic();
    }
  }

  updateCam(camId: string): void {
    this._camId = camId || undefined;
    if (this._local.video) {
      this._stop("video");
      void this._startCam();
    }
  }

  updateSpeaker(_speakerId: string): void {
    // The page plays the bot through an <audio> element; setSinkId is left to it.
  }

  get selectedMic(): MediaDeviceInfo | Record<string, never> {
    return this._selectedMic;
  }

  get selectedCam(): MediaDeviceInfo | Record<string, never> {
    return this._selectedCam;
  }

  get selectedSpeaker(): Record<string, never> {
    return {};
  }

  enableMic(enable: boolean): void {
    this._micEnabled = enable;
    const track = this._local.audio;
    if (track) {
      // Muting keeps the track (and the sender) and only stops its samples.
      track.enabled = enable;
    } else if (enable) {
      void this._startMic();
    }
  }

  enableCam(enable: boolean): void {
    this._camEnabled = enable;
    if (enable) void this._startCam();
    else this._stop("video");
  }

  enableScreenShare(enable: boolean): void {
    this._screenEnabled = enable;
    if (enable) void this._startScreen();
    else this._stop("screenVideo");
  }

  get isMicEnabled(): boolean {
    return this._micEnabled;
  }

  get isCamEnabled(): boolean {
    return this._camEnabled;
  }

  get isSharingScreen(): boolean {
    return this._screenEnabled;
  }

  tracks(): Tracks {
    return { local: { ...this._local } };
  }

  // ---- internals ----

  private _reopenEnded(): void {
    const ended = (kind: LocalKind) => this._local[kind]?.readyState === "ended";
    if (ended("audio")) void this._startMic();
    if (ended("video")) void this._startCam();
    if (ended("screenVideo")) {
      // A screen share cannot be reopened without a click: report it as ended.
      this._stop("screenVideo");
      this._screenEnabled = false;
      this.onScreenShareEnded?.();
    }
  }

  private _startMic(): Promise<void> {
    return this._once("audio", () => this._openMic());
  }

  private async _openMic(): Promise<void> {
    if (this._local.audio?.readyState === "live") return;
    const stream = await this._getMedia("mic", () =>
      navigator.mediaDevices.getUserMedia({
        audio: {
          deviceId: this._micId ? { exact: this._micId } : undefined,
          echoCancellation: true,
          noiseSuppression: true,
          autoGainControl: true,
        },
      }),
    );
    const track = stream?.getAudioTracks()[0];
    if (!track) return;
    track.enabled = this._micEnabled;
    await this._use("audio", track);
    this._selectedMic = await this._deviceOf(track, "audioinput");
    this._callbacks.onMicUpdated?.(this._selectedMic as MediaDeviceInfo);
  }

  private _startCam(): Promise<void> {
    return this._once("video", () => this._openCam());
  }

  private async _openCam(): Promise<void> {
    if (this._local.video?.readyState === "live") return;
    const stream = await this._getMedia("cam", () =>
      navigator.mediaDevices.getUserMedia({
        video: {
          deviceId: this._camId ? { exact: this._camId } : undefined,
          width: { ideal: 1280 },
          height: { ideal: 720 },
        },
      }),
    );
    const track = stream?.getVideoTracks()[0];
    if (!track) {
      this._camEnabled = false;
      return;
    }
    if (!this._camEnabled) {
      track.stop(); // switched off while the prompt was open
      return;
    }
    await this._use("video", track);
    this._selectedCam = await this._deviceOf(track, "videoinput");
    this._callbacks.onCamUpdated?.(this._selectedCam as MediaDeviceInfo);
  }

  private _startScreen(): Promise<void> {
    return this._once("screenVideo", () => this._openScreen());
  }

  private async _openScreen(): Promise<void> {
    if (this._local.screenVideo?.readyState === "live") return;
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (e) {
      this._screenEnabled = false;
      this._callbacks.onScreenShareError?.(e instanceof Error ? e.message : String(e));
      this.onScreenShareEnded?.();
      return;
    }
    const track = stream.getVideoTracks()[0];
    if (!track || !this._screenEnabled) {
      stream.getTracks().forEach((t) => t.stop());
      return;
    }
    track.addEventListener("ended", () => {
      if (this._local.screenVideo !== track) return;
      this._stop("screenVideo");
      this._screenEnabled = false;
      this.onScreenShareEnded?.();
    });
    await this._use("screenVideo", track);
  }

  /** Runs one open per kind at a time; a second caller waits for the first. */
  private _once(kind: LocalKind, open: () => Promise<void>): Promise<void> {
    const running = this._opening[kind];
    if (running) return running;
    const p = open().finally(() => delete this._opening[kind]);
    this._opening[kind] = p;
    return p;
  }

  private async _use(kind: LocalKind, track: MediaStreamTrack): Promise<void> {
    const previous = this._local[kind];
    this._local[kind] = track;
    await this._sender(kind)?.replaceTrack(track);
    previous?.stop();
    if (kind === "screenVideo") this._callbacks.onScreenTrackStarted?.(track, LOCAL);
    else this._callbacks.onTrackStarted?.(track, LOCAL);
  }

  private _stop(kind: LocalKind): void {
    const track = this._local[kind];
    if (!track) return;
    delete this._local[kind];
    track.stop();
    void this._sender(kind)?.replaceTrack(null).catch(() => undefined);
    if (kind === "screenVideo") this._callbacks.onScreenTrackStopped?.(track, LOCAL);
    else this._callbacks.onTrackStopped?.(track, LOCAL);
  }

  private _sender(kind: LocalKind): RTCRtpSender | undefined {
    const pc = this._owner?.pc;
    if (!pc || pc.connectionState === "closed") return undefined;
    return pc.getTransceivers()[TRANSCEIVER[kind]]?.sender;
  }

  private async _getMedia(
    device: "mic" | "cam",
    open: () => Promise<MediaStream>,
  ): Promise<MediaStream | null> {
    if (!navigator.mediaDevices?.getUserMedia) {
      this._deviceError(device, "undefined-mediadevices", "navigator.mediaDevices is missing");
      return null;
    }
    try {
      return await open();
    } catch (e) {
      const err = e as DOMException;
      const type: DeviceErrorType =
        err.name === "NotAllowedError"
          ? "permissions"
          : err.name === "NotFoundError"
            ? "not-found"
            : err.name === "NotReadableError"
              ? "in-use"
              : err.name === "OverconstrainedError"
                ? "constraints"
                : "unknown";
      this._deviceError(device, type, err.message);
      return null;
    }
  }

  private _deviceError(device: "mic" | "cam", type: DeviceErrorType, message: string): void {
    this._callbacks.onDeviceError?.(new DeviceError([device], type, message));
  }

  private async _devices(kind: MediaDeviceKind): Promise<MediaDeviceInfo[]> {
    if (!navigator.mediaDevices?.enumerateDevices) return [];
    return (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === kind);
  }

  private async _deviceOf(
    track: MediaStreamTrack,
    kind: MediaDeviceKind,
  ): Promise<MediaDeviceInfo | Record<string, never>> {
    const id = track.getSettings().deviceId;
    const found = (await this._devices(kind)).find((d) => d.deviceId === id);
    return found ?? { deviceId: id ?? "", groupId: "", kind, label: track.label, toJSON: () => ({}) };
  }

  private async _announceDevices(): Promise<void> {
    const devices = navigator.mediaDevices?.enumerateDevices
      ? await navigator.mediaDevices.enumerateDevices()
      : [];
    this._callbacks.onAvailableMicsUpdated?.(devices.filter((d) => d.kind === "audioinput"));
    this._callbacks.onAvailableCamsUpdated?.(devices.filter((d) => d.kind === "videoinput"));
    this._callbacks.onAvailableSpeakersUpdated?.(devices.filter((d) => d.kind === "audiooutput"));
  }
}
