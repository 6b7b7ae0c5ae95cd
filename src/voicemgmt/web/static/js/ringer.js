// The ring of an incoming call, synthesised (no sound file): 400 + 450 Hz, 1 s on, 2 s off.
// Muted by the operator's choice (kept in localStorage) or by ?sound=off (tests).

import { local } from "./storage.js";

const KEY = "vm.sound";

export class Ringer {
  constructor() {
    const asked = new URLSearchParams(location.search).get("sound");
    this.forcedOff = asked === "off" || asked === "0";
    this.enabled = !this.forcedOff && local.getItem(KEY) !== "off";
    this.context = null;
    this.timer = null;
    this.nodes = [];
  }

  setEnabled(enabled) {
    this.enabled = enabled && !this.forcedOff;
    local.setItem(KEY, this.enabled ? "on" : "off");
    if (!this.enabled) this.stop();
  }

  get ringing() {
    return this.timer !== null;
  }

  start() {
    if (!this.enabled || this.timer !== null) return;
    try {
      this.context = this.context || new AudioContext();
    } catch {
      return;
    }
    const burst = () => this._burst(1.0);
    burst();
    this.timer = setInterval(burst, 3000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    for (const node of this.nodes) {
      try {
        node.stop();
      } catch {
        /* already stopped */
      }
    }
    this.nodes = [];
  }

  _burst(seconds) {
    const context = this.context;
    if (!context) return;
    if (context.state === "suspended") context.resume().catch(() => {});
    const gain = context.createGain();
    gain.gain.value = 0.12;
    gain.connect(context.destination);
    const end = context.currentTime + seconds;
    this.nodes = [400, 450].map((frequency) => {
      const oscillator = context.createOscillator();
      oscillator.frequency.value = frequency;
      oscillator.connect(gain);
      oscillator.start();
      oscillator.stop(end);
      return oscillator;
    });
  }
}
