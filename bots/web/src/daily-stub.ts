/**
 * Stands in for @daily-co/daily-js in the bundle.
 *
 * small-webrtc-transport imports daily-js for its default DailyMediaManager,
 * which this page never builds (it passes its own media manager). daily-js
 * would add ~250 KB and code that loads Daily's call machine from a CDN, so the
 * build swaps it for this stub. Anything that reaches it is a bug.
 */
function unavailable(): never {
  throw new Error("daily-js is not bundled: pass a mediaManager to SmallWebRTCTransport");
}

export default {
  getCallInstance: unavailable,
  createCallObject: unavailable,
};
