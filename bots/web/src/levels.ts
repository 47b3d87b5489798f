/**
 * Audio levels through WebAudio: the bot's voice and the microphone, measured
 * so the page can draw its meters (and the browser tests can hear the bot).
 */

export type Which = "bot" | "mic";

export class AudioLevels {
  private ctx: AudioContext | null = null;
  private readonly analysers: Record<Which, AnalyserNode | null> = { bot: null, mic: null };
  private readonly tracks: Record<Which, string | null> = { bot: null, mic: null };

  /** The page's one AudioContext, resumed if autoplay rules suspended it. */
  context(): AudioContext {
    this.ctx ??= new AudioContext();
    if (this.ctx.state === "suspended") void this.ctx.resume();
    return this.ctx;
  }

  /** Resume the context if autoplay rules suspended it; never creates one. */
  resume(): void {
    if (this.ctx?.state === "suspended") void this.ctx.resume();
  }

  /** Whether `track` is the one measured as `which`. */
  measures(which: Which, track: MediaStreamTrack): boolean {
    return this.tracks[which] === track.id;
  }

  /** Measure `track` as `which` from now on. */
  analyse(which: Which, track: MediaStreamTrack): void {
    if (this.measures(which, track)) return;
    const ctx = this.context();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    this.analysers[which] = analyser;
    this.tracks[which] = track.id;
  }

  /** Root mean square of the current audio frame, 0 (silence) to 1. */
  rms(which: Which): number {
    const analyser = this.analysers[which];
    if (!analyser) return 0;
    const buf = new Float32Array(analyser.fftSize);
    analyser.getFloatTimeDomainData(buf);
    let sum = 0;
    for (const v of buf) sum += v * v;
    return Math.sqrt(sum / buf.length);
  }
}
