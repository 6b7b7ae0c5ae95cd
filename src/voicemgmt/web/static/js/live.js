// The account's event stream (/vm/events) for a page: resume, heartbeat, reconnect.
//
// A page loads its state (which carries the stream position `seq` and the stream's `epoch`),
// then calls `start(seq, epoch)`: every event after that position is delivered once, in
// order, even across dropped connections (the page reconnects with `after` = the last seq it
// saw and `epoch`, so that a server whose numbering restarted cannot silently skip events).
// States: "connecting", "live", "reconnecting", "offline" (the browser says it has no network).
// Close codes from the server: 4401 the token is no longer valid → `onLoggedOut`;
// 4410 reload (the resume point is too old, or the stream restarted: another epoch) and
// 4400 → `onReset` (reload the state, start again).

const HEARTBEAT_MS = 15000; // the server pings at least this often
const SILENCE_MS = 2.5 * HEARTBEAT_MS; // then the connection is presumed dead
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10000;

export class LiveStream {
  constructor({ token, onEvent, onState, onLoggedOut, onReset }) {
    this.token = token;
    this.onEvent = onEvent;
    this.onState = onState || (() => {});
    this.onLoggedOut = onLoggedOut || (() => {});
    this.onReset = onReset || (() => {});
    this.lastSeq = null;
    this.epoch = null;
    this.socket = null;
    this.attempts = 0;
    this.stopped = true;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastHeard = 0;
    this.state = "connecting";
    this._online = () => this._reconnectNow();
    this._offline = () => this._setState("offline");
  }

  start(after, epoch) {
    this.stop();
    this.stopped = false;
    this.lastSeq = after;
    this.epoch = epoch || null;
    addEventListener("online", this._online);
    addEventListener("offline", this._offline);
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.watchdog);
    removeEventListener("online", this._online);
    removeEventListener("offline", this._offline);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.onclose = socket.onmessage = socket.onopen = socket.onerror = null;
      try {
        socket.close(1000);
      } catch {
        /* already closed */
      }
    }
  }

  _url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = new URLSearchParams({ token_session: this.token });
    if (this.lastSeq !== null && this.lastSeq !== undefined) query.set("after", this.lastSeq);
    if (this.epoch) query.set("epoch", this.epoch);
    return `${scheme}//${location.host}/vm/events?${query}`;
  }

  _connect() {
    if (this.stopped) return;
    this._setState(this.attempts === 0 && this.state !== "reconnecting" ? "connecting" : "reconnecting");
    const socket = new WebSocket(this._url());
    this.socket = socket;
    this.lastHeard = Date.now();
    socket.onmessage = (message) => this._receive(message);
    socket.onclose = (event) => this._closed(socket, event.code);
    socket.onerror = () => {}; // a close follows
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (this.socket === socket && Date.now() - this.lastHeard > SILENCE_MS) socket.close();
    }, 1000);
  }

  _receive(message) {
    this.lastHeard = Date.now();
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.kind === "hello") {
      if (this.epoch && frame.epoch && frame.epoch !== this.epoch) {
        // Another stream (the server checks too): our position means nothing there.
        this.stop();
        this.onReset();
        return;
      }
      this.attempts = 0;
      if (frame.epoch) this.epoch = frame.epoch;
      if (this.lastSeq === null || this.lastSeq === undefined) this.lastSeq = frame.seq;
      this._setState("live");
      return;
    }
    if (frame.kind === "ping" || typeof frame.seq !== "number") return;
    if (this.lastSeq !== null && frame.seq <= this.lastSeq) return; // seen already
    this.lastSeq = frame.seq;
    try {
      this.onEvent(frame);
    } catch (error) {
      console.error("event handler failed", frame.kind, error);
    }
  }

  _closed(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    clearInterval(this.watchdog);
    if (this.stopped) return;
    if (code === 4401) {
      this.stop();
      this.onLoggedOut();
      return;
    }
    if (code === 4410 || code === 4400) {
      this.stop();
      this.onReset();
      return;
    }
    this._scheduleRetry();
  }

  _scheduleRetry() {
    this._setState(navigator.onLine === false ? "offline" : "reconnecting");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempts += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this._connect(), delay);
  }

  _reconnectNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.retryTimer);
    this._connect();
  }

  _setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }
}
