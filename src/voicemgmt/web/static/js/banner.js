// The operator banner (/operateurs/index.htm): status, calls, dial pad, recent and missed
// calls, screen-pop; live over the account's event stream.
//
// State comes from GET /api/v1/me/state (with its stream position), then from the events
// after it. Several tabs of one operator each show everything; one of them (the holder of a
// Web Lock) rings, opens the CRM's customer file and picks up the operator's own line of a
// click-to-call, so that a call rings in one place.

import { Api } from "./api.js";
import { CallCards } from "./cards.js";
import { CnxBridge } from "./cnx-bridge.js";
import { duration } from "./format.js";
import { t, translate } from "./i18n.js";
import { CallLists } from "./lists.js";
import { LiveStream } from "./live.js";
import { Ringer } from "./ringer.js";
import { local, session } from "./storage.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "vm.token";
const POPPED_KEY = "vm.popped";
// Screen-pop parameters (guide §3.2); IVR variables never replace them.
const POP_FIELDS = ["id_session", "e164_in", "id_call", "caller_id_num", "action", "id_op", "id_group", "wait"];

class Call {
  constructor(fields) {
    Object.assign(this, {
      direction: "in",
      phase: "offered",
      variables: {},
      wait0: 0,
      group: null,
      ticket: null,
      display: "",
      answeredAt: null,
      transferred: false,
      ...fields,
    });
    this.offeredAt = this.offeredAt || Date.now();
    this.startedAt = this.startedAt || Date.now();
  }

  /** Seconds the caller has waited, as of `now`. */
  waitAt(now) {
    return this.wait0 + Math.max(0, now - this.offeredAt) / 1000;
  }
}

export class Banner {
  constructor() {
    this.token = null;
    this.api = null;
    this.stream = null;
    this.me = null;
    this.account = null;
    this.groups = new Map();
    this.numbers = new Map();
    this.calls = new Map();
    this.status = { status: "offline", presence: "offline", activity: "idle", since: Date.now() };
    this.wrapUpUntil = null;
    this.lastGroup = null;
    this.skew = 0;
    this.leader = false;
    this.dialing = false;
    this.hideLogout = params.get("hide_logout") === "1";
    this.ringer = new Ringer();
    this.listeners = new Set();
    this.cards = new CallCards($("cards"), $("tpl-call"), this);
    this.lists = new CallLists(this, $("tpl-list-item"));
  }

  // --- start, login and logout -----------------------------------------------------------

  async boot() {
    translate();
    this._bind();
    if (CnxBridge.wanted(params)) this.bridge = new CnxBridge(this);
    setInterval(() => this._tick(), 1000);
    const prefill = params.get("fiche_num");
    if (prefill) $("dial-number").value = prefill.slice(0, 32);
    const token = params.get("token_session") || session.getItem(TOKEN_KEY);
    if (token) await this.login(token);
    else this.showLoggedOut("");
  }

  /** Open the banner with a session token; true when it worked. One login at a time: the
   * banner's own (from the URL) and one asked by cnx.js may cross. */
  login(token) {
    const run = () => this._login(token);
    this._logins = (this._logins || Promise.resolve()).then(run, run);
    return this._logins;
  }

  async _login(token) {
    this.stop();
    this.token = token;
    this.api = new Api(token);
    this.loginFailure = null;
    this._view("loading");
    try {
      const directory = await this.api.get("/api/v1/me/directory");
      if (directory.me.user_type !== "agent") return this._refuse("wrong_role", t("out.wrong_role"));
      this._directory(directory);
      if (!this.embedderAllowed()) return this._refuse("forbidden_origin", t("out.not_allowed"));
      session.setItem(TOKEN_KEY, token);
      await this.loadState();
    } catch (error) {
      if (error.status === 401 || error.status === 404 || error.status === 403) {
        return this._refuse("invalid_token", t("out.invalid"));
      }
      return this._refuse("failed", t("error.generic", { reason: error.message }));
    }
    $("me-name").textContent = this.me.name;
    this.setHideLogout(this.hideLogout);
    this._view("main");
    this.lists.refresh();
    this._electLeader();
    this.emit("login", { id_op: this.me.id });
    return true;
  }

  _refuse(code, message) {
    this.loginFailure = code;
    this.me = null; // never logged in: nobody to tell that the session ended
    return this.showLoggedOut(message);
  }

  setHideLogout(hidden) {
    this.hideLogout = hidden;
    $("logout").hidden = hidden;
  }

  async loginWithPassword(email, password) {
    const answer = await new Api(null).post("/vm/login", { login: email, password });
    return this.login(answer.token);
  }

  async logout() {
    try {
      await this.api.post("/vm/logout");
    } catch {
      /* the session is gone either way */
    }
    this.showLoggedOut(t("out.logged_out"));
  }

  stop() {
    if (this.stream) this.stream.stop();
    this.stream = null;
    this.ringer.stop();
    this.calls.clear();
  }

  showLoggedOut(message) {
    const wasLoggedIn = this.me !== null;
    this.stop();
    session.removeItem(TOKEN_KEY);
    this.token = null;
    this.api = null;
    this.me = null;
    $("out-message").textContent = message;
    $("out-message").hidden = !message;
    this._view("out");
    if (wasLoggedIn) this.emit("auth_invalid", {});
    return false;
  }

  /** Inside a frame, the embedding page must be one the account allows (SPEC §4). */
  embedderAllowed() {
    if (window.top === window) return true;
    const ancestors = location.ancestorOrigins;
    if (!ancestors) return true; // the browser enforced frame-ancestors on this page's load
    const allowed = new Set([location.origin, ...this.account.allowed_origins]);
    return Array.from(ancestors).every((origin) => allowed.has(origin));
  }

  _directory(directory) {
    this.me = directory.me;
    this.account = directory.account;
    this.groups = new Map(directory.groups.map((g) => [g.id_group, g]));
    this.numbers = new Map(directory.numbers.map((n) => [n.e164, n]));
    this.operators = directory.operators;
  }

  async loadState() {
    const state = await this.api.get("/api/v1/me/state");
    this.skew = Date.parse(state.now) - Date.now();
    this._operator(state.operator);
    this.calls.clear();
    for (const snapshot of state.calls) {
      const call = this._fromSnapshot(snapshot);
      if (call) this.calls.set(call.id, call);
    }
    this.stream = new LiveStream({
      token: this.token,
      onEvent: (frame) => this.onEvent(frame),
      onState: (state) => this._connection(state),
      onLoggedOut: () => this.showLoggedOut(t("out.invalid")),
      onReset: () => this.loadState().catch((error) => this.failed(error)),
    });
    this.stream.start(state.seq);
    this.render();
    this.emit("status", this.statusPayload());
    for (const call of this.calls.values()) {
      this.emit(call.direction, call.direction === "in" ? this.inPayload(call) : this.outPayload(call));
    }
    return true;
  }

  /** A server time (ISO) on this browser's clock. */
  local(iso) {
    const at = Date.parse(iso);
    return Number.isNaN(at) ? Date.now() : at - this.skew;
  }

  _operator(operator) {
    if (!operator) return;
    this.status = {
      status: operator.status,
      presence: operator.presence,
      activity: operator.activity,
      since: this.local(operator.status_since),
    };
    this.wrapUpUntil = operator.wrap_up_until ? this.local(operator.wrap_up_until) : null;
  }

  _fromSnapshot(c) {
    const mine = this.me.id;
    const base = {
      id: c.id_call,
      direction: c.direction,
      group: c.id_group,
      variables: c.variables || {},
      ticket: c.ticket_id,
      startedAt: this.local(c.started_at),
      answeredAt: c.answered_at ? this.local(c.answered_at) : null,
    };
    if (c.direction === "out") {
      const phase =
        c.state === "dialing_operator" ? "dialing_me" : c.state === "dialing_customer" ? "dialing" : c.held ? "held" : "connected";
      return new Call({ ...base, phase, number: c.e164, display: c.display.e164, caller: c.caller_id_num });
    }
    const inbound = { ...base, number: c.caller_id_num, display: c.display.caller_id_num, called: c.e164, wait0: c.wait || 0 };
    if (c.state === "ringing" && c.ringing.includes(mine)) return new Call({ ...inbound, phase: "offered" });
    if (c.id_op === mine) return new Call({ ...inbound, phase: c.held ? "held" : "connected", waitFinal: c.wait });
    return null;
  }

  // --- the event stream --------------------------------------------------------------------

  onEvent(frame) {
    const data = frame.data;
    const at = this.local(frame.at);
    const mine = this.me.id;
    switch (frame.kind) {
      case "operator.status":
        if (data.id_op === mine) this._statusEvent(data, at);
        break;
      case "call.offered":
        if (data.id_op === mine) this._offered(data, at);
        break;
      case "call.offer_withdrawn":
        if (data.id_op === mine) this.calls.delete(data.id_call);
        break;
      case "call.answered":
        if (data.id_op === mine) this._answered(data, at);
        break;
      case "call.held":
      case "call.resumed": {
        const call = this.calls.get(data.id_call);
        if (call && data.id_op === mine) call.phase = frame.kind === "call.held" ? "held" : "connected";
        break;
      }
      case "call.outbound":
        if (data.id_op === mine) this._outbound(data, at);
        break;
      case "call.transferred":
        if (data.from_op === mine) {
          const call = this.calls.get(data.id_call);
          if (call) {
            this.lastGroup = call.group;
            this.emit("end", this.transferPayload(call, data, at));
          }
          this.calls.delete(data.id_call);
        }
        break;
      case "call.ended":
        this._ended(data.record);
        break;
      default:
        return;
    }
    this.render();
  }

  _statusEvent(data, at) {
    const changed = data.status !== this.status.status;
    this.status = {
      status: data.status,
      presence: data.presence,
      activity: data.activity,
      since: changed ? at : this.status.since,
    };
    if (data.activity === "wrap_up") {
      // The wrap-up follows the end of a call (its call.ended or call.transferred, which set
      // lastGroup); a call still shown here is one whose end this banner has not seen.
      const current = [...this.calls.values()].find((c) => c.phase === "connected" || c.phase === "held");
      const group = this.groups.get(current ? current.group : this.lastGroup);
      this.wrapUpUntil = at + 1000 * (group ? group.wrap_up : 0);
    } else {
      this.wrapUpUntil = null;
    }
    if (changed) this.emit("status", this.statusPayload());
  }

  statusPayload() {
    return {
      status: this.status.status,
      presence: this.status.presence,
      activity: this.status.activity,
      id_op: this.me ? this.me.id : null,
    };
  }

  /** What a CRM page learns when cnx.js connects: the status and the calls going on. */
  cnxState() {
    if (!this.me) return { logged_in: false };
    const calls = [...this.calls.values()].map((call) => ({
      kind: call.direction,
      data: call.direction === "in" ? this.inPayload(call) : this.outPayload(call),
    }));
    return { logged_in: true, id_op: this.me.id, status: this.statusPayload(), calls };
  }

  _offered(data, at) {
    const call = new Call({
      id: data.id_call,
      direction: "in",
      phase: "offered",
      number: data.caller_id_num,
      display: data.display && data.display.caller_id_num,
      called: data.e164_in,
      group: data.id_group,
      wait0: data.wait,
      variables: data.variables || {},
      offeredAt: Math.min(at, Date.now()),
      transferred: this.calls.has(data.id_call),
    });
    this.calls.set(call.id, call);
    this.screenPop(call, "presentation");
    this.emit("in", this.inPayload(call));
  }

  _answered(data, at) {
    const call = this.calls.get(data.id_call);
    if (!call) return;
    if (call.phase === "offered") call.waitFinal = call.waitAt(at);
    call.phase = "connected";
    call.answeredAt = at;
    call.busy = false;
    if (call.direction === "in") this.screenPop(call, "answer");
  }

  _outbound(data, at) {
    const call = new Call({
      id: data.id_call,
      direction: "out",
      phase: "dialing_me",
      number: data.e164_out,
      display: data.display && data.display.e164_out,
      caller: data.caller_id_num,
      ticket: data.ticket_id,
      startedAt: at,
    });
    this.calls.set(call.id, call);
    this.emit("out", this.outPayload(call));
    // This banner is the operator's phone: it picks up the line it asked for.
    if (this.dialing || this.leader) this.act(call.id, "answer");
  }

  _ended(record) {
    const call = this.calls.get(record.id_call);
    if (call) {
      this.lastGroup = record.id_group;
      this.calls.delete(record.id_call);
    }
    const mine = this.me.id;
    if (record.id_op === mine || record.operators_offered.includes(mine)) {
      this.lists.refreshSoon();
      if (record.id_op === mine) this.emit("end", this.endPayload(record));
      else if (record.outcome === "missed" || record.outcome === "abandoned") {
        this.emit("missed", this.missedPayload(record));
      }
    }
  }

  // --- notifications (the cnx.js bridge listens here) -------------------------------------

  on(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(kind, payload) {
    for (const listener of this.listeners) {
      try {
        listener(kind, payload);
      } catch (error) {
        console.error("listener failed", error);
      }
    }
  }

  inPayload(call) {
    return {
      id_session: this.token,
      e164_in: call.called,
      id_call: call.id,
      caller_id_num: call.number,
      id_op: this.me.id,
      id_groupe: call.group,
      wait: Math.floor(call.wait0),
      ...call.variables,
    };
  }

  /** set_notif_out: as set_notif_in, `caller_id_num` is the customer's number, and `e164_out`
   * the account's number the call goes out on (its caller id). */
  outPayload(call) {
    return {
      id_session: this.token,
      e164_out: call.caller,
      id_call: call.id,
      caller_id_num: call.number,
      id_op: this.me.id,
      id_groupe: call.group,
      ticket_id: call.ticket,
    };
  }

  /** set_notif_endCall: the call's record, in the guide's words, with its durations. As in
   * set_notif_in and set_notif_out, caller_id_num is the customer's number. (A record of an
   * outgoing call names the customer service_number, and the line it went out on
   * caller_number.) */
  endPayload(record) {
    const inbound = record.direction === "in";
    return {
      id_session: this.token,
      id_call: record.id_call,
      direction: record.direction,
      [inbound ? "e164_in" : "e164_out"]: inbound ? record.service_number : record.caller_number,
      caller_id_num: inbound ? record.caller_number : record.service_number,
      id_op: record.id_op,
      id_groupe: record.id_group,
      outcome: record.outcome,
      ended_by: record.ended_by,
      disconnect_reason: record.disconnect_reason,
      duration: record.duration,
      duration_ring: record.duration_ring,
      duration_svi: record.duration_svi,
      duration_wait: record.duration_wait,
      duration_comm: record.duration_comm,
      duration_hold: record.duration_hold,
      ticket_id: record.ticket_id,
      ...record.variables,
    };
  }

  /** The operator's part of a call ends when they transfer it. */
  transferPayload(call, data, at) {
    const talk = call.answeredAt ? (at - call.answeredAt) / 1000 : 0;
    return {
      id_session: this.token,
      id_call: call.id,
      direction: call.direction,
      [call.direction === "in" ? "e164_in" : "e164_out"]: call.direction === "in" ? call.called : call.caller,
      caller_id_num: call.number,
      id_op: this.me.id,
      id_groupe: call.group,
      outcome: "transferred",
      ended_by: "operator",
      disconnect_reason: data.to_op ? `transferred_to_operator_${data.to_op}` : `transferred_to_group_${data.to_group}`,
      duration_comm: Math.round(talk * 1000) / 1000,
      ticket_id: call.ticket,
      ...call.variables,
    };
  }

  missedPayload(record) {
    return {
      id_session: this.token,
      id_call: record.id_call,
      e164_in: record.service_number,
      caller_id_num: record.caller_number,
      id_op: this.me.id,
      id_groupe: record.id_group,
      wait: Math.floor(record.duration_wait),
      outcome: record.outcome,
      disconnect_reason: record.disconnect_reason,
      date: record.date,
      ...record.variables,
    };
  }

  // --- screen-pop (SPEC §3) ----------------------------------------------------------------

  crmWindowName() {
    return `vm_crm_${this.account.id}`;
  }

  crmUrl(call, wait) {
    const group = this.groups.get(call.group);
    const base = (group && group.crm_url) || this.account.crm_url;
    if (!base) return null;
    const url = new URL(base);
    const fields = {
      id_session: this.token,
      e164_in: call.called,
      id_call: call.id,
      caller_id_num: call.number,
      action: "in",
      id_op: this.me.id,
      id_group: call.group,
      wait: Math.floor(wait),
    };
    for (const name of POP_FIELDS) url.searchParams.set(name, String(fields[name] ?? ""));
    for (const [name, value] of Object.entries(call.variables)) {
      if (!POP_FIELDS.includes(name)) url.searchParams.set(name, String(value));
    }
    return url.toString();
  }

  screenPop(call, moment) {
    if (this.account.screen_pop !== moment) return;
    const wait = moment === "answer" ? call.waitFinal ?? call.wait0 : call.wait0;
    call.crmUrl = this.crmUrl(call, wait);
    if (!call.crmUrl || !this.leader || this._popped(call.id)) return;
    const opened = window.open(call.crmUrl, this.crmWindowName());
    if (!opened) this.notice(t("error.popup_blocked"));
  }

  _popped(callId) {
    let popped = [];
    try {
      popped = JSON.parse(local.getItem(POPPED_KEY) || "[]");
    } catch {
      popped = [];
    }
    if (popped.includes(callId)) return true;
    local.setItem(POPPED_KEY, JSON.stringify([...popped.slice(-49), callId]));
    return false;
  }

  // --- actions -------------------------------------------------------------------------------

  async act(callId, action) {
    const call = this.calls.get(callId);
    if (!call) return;
    if (action === "transfer") return this.openTransfer(callId);
    call.busy = true;
    this.render();
    try {
      await this.api.post(`/api/v1/me/calls/${encodeURIComponent(callId)}/${action}`);
    } catch (error) {
      if (error.code !== "unknown_call") this.failed(error);
    } finally {
      call.busy = false;
      this.render();
    }
  }

  async openTransfer(callId) {
    try {
      const directory = await this.api.get("/api/v1/me/directory");
      this.cards.openTransfer(callId, directory.operators, directory.groups, this.me.id);
    } catch (error) {
      this.failed(error);
    }
  }

  async transfer(callId, target) {
    const [kind, id] = target.split(":");
    const body = kind === "op" ? { id_op: Number(id) } : { id_group: Number(id) };
    try {
      await this.api.post(`/api/v1/me/calls/${encodeURIComponent(callId)}/transfer`, body);
    } catch (error) {
      this.failed(error);
    }
  }

  async setStatus(status, { raise = false } = {}) {
    try {
      await this.api.put("/api/v1/me/status", { status });
    } catch (error) {
      this.failed(error);
      this.render();
      if (raise) throw error;
    }
  }

  /** Pre-fill the dial pad and, with `start`, call at once; resolves with the call's id. */
  async dial(number, { start = true, ticketId = null } = {}) {
    this.selectTab("dial");
    $("dial-number").value = String(number ?? "").slice(0, 32);
    if (start) return this.call(ticketId);
    return null;
  }

  async call(ticketId = null) {
    const error = $("dial-error");
    const to = $("dial-number").value.trim();
    error.hidden = true;
    if (!to) {
      error.textContent = t("dial.empty");
      error.hidden = false;
      return null;
    }
    const body = { to };
    if (ticketId) body.ticket_id = String(ticketId);
    this.dialing = true;
    try {
      const answer = await this.api.post("/api/v1/me/calls", body);
      return answer.id_call;
    } catch (failure) {
      error.textContent =
        failure.code === "invalid_phone_number" || failure.status === 400
          ? t("dial.invalid", { reason: failure.message })
          : failure.code === "invalid_call_action" && this.status.presence === "offline"
            ? t("error.offline")
            : t("error.generic", { reason: failure.message });
      error.hidden = false;
      throw failure;
    } finally {
      this.dialing = false;
    }
  }

  failed(error) {
    if (error && error.status === 401) {
      this.showLoggedOut(t("out.invalid"));
      return;
    }
    this.notice(t("error.generic", { reason: error && error.message ? error.message : String(error) }));
  }

  notice(message) {
    const box = $("banner-error");
    box.textContent = message;
    box.hidden = false;
    clearTimeout(this._noticeTimer);
    this._noticeTimer = setTimeout(() => {
      box.hidden = true;
    }, 6000);
  }

  // --- the page ------------------------------------------------------------------------------

  _view(view) {
    $("app").dataset.view = view;
    $("loading").hidden = view !== "loading";
    $("logged-out").hidden = view !== "out";
    $("main").hidden = view !== "main";
    $("controls").hidden = view !== "main";
    $("status-line").hidden = view !== "main";
    if (view !== "main") $("conn").dataset.state = "idle";
  }

  _connection(state) {
    $("conn").dataset.state = state;
    $("conn-label").textContent = t(`conn.${state}`);
  }

  selectTab(name) {
    for (const tab of document.querySelectorAll("[role=tab]")) {
      const selected = tab.dataset.tab === name;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
      $(tab.getAttribute("aria-controls")).hidden = !selected;
    }
    if (name === "missed") this.lists.markMissedSeen();
  }

  render() {
    if (!this.me) return;
    $("status").value = this.status.presence;
    $("status-box").dataset.status = this.status.status;
    const activity = this.status.activity;
    $("activity").textContent = activity === "idle" ? t(`status.${this.status.status}`) : t(`activity.${activity}`);
    this.cards.render(this.calls);
    const ringing = [...this.calls.values()].some((call) => call.phase === "offered");
    if (ringing && this.leader) this.ringer.start();
    else this.ringer.stop();
    const sound = $("sound");
    sound.setAttribute("aria-pressed", String(this.ringer.enabled));
    sound.title = t(this.ringer.enabled ? "sound.on" : "sound.off");
    sound.setAttribute("aria-label", sound.title);
    this._tick();
  }

  _tick() {
    if (!this.me) return;
    const now = Date.now();
    $("status-time").textContent = duration((now - this.status.since) / 1000);
    const wrapup = $("wrapup");
    const left = this.wrapUpUntil ? (this.wrapUpUntil - now) / 1000 : 0;
    wrapup.hidden = !(this.status.activity === "wrap_up" && left > 0);
    if (!wrapup.hidden) wrapup.textContent = t("wrapup.left", { time: duration(Math.ceil(left)) });
    this.cards.tick();
  }

  _electLeader() {
    if (!navigator.locks) {
      this.leader = true;
      return;
    }
    const name = `vm-banner-${this.account.id}-${this.me.id}`;
    const lead = () => {
      this.leader = true;
      this.render();
      return new Promise(() => {}); // held while this tab lives
    };
    // A frame denied storage may be denied locks too: then every tab of it leads.
    navigator.locks.request(name, lead).catch(lead);
  }

  _bind() {
    $("status").addEventListener("change", (event) => this.setStatus(event.target.value));
    $("logout").addEventListener("click", () => this.logout());
    $("sound").addEventListener("click", () => {
      this.ringer.setEnabled(!this.ringer.enabled);
      this.render();
    });
    for (const tab of document.querySelectorAll("[role=tab]")) {
      tab.addEventListener("click", () => this.selectTab(tab.dataset.tab));
      tab.addEventListener("keydown", (event) => {
        const tabs = [...document.querySelectorAll("[role=tab]")];
        const index = tabs.indexOf(tab);
        const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
        if (!step) return;
        const next = tabs[(index + step + tabs.length) % tabs.length];
        this.selectTab(next.dataset.tab);
        next.focus();
      });
    }
    $("dial-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.call().catch(() => {});
    });
    $("dial-clear").addEventListener("click", () => {
      $("dial-number").value = "";
      $("dial-error").hidden = true;
      $("dial-number").focus();
    });
    for (const key of document.querySelectorAll(".keypad [data-key]")) {
      key.addEventListener("click", () => {
        const input = $("dial-number");
        if (input.value.length < 32) input.value += key.dataset.key;
        input.focus();
      });
    }
    $("login").addEventListener("submit", async (event) => {
      event.preventDefault();
      const error = $("login-error");
      error.hidden = true;
      try {
        await this.loginWithPassword($("login-email").value.trim(), $("login-password").value);
        $("login-password").value = "";
      } catch (failure) {
        error.textContent =
          failure.status === 429
            ? t("login.throttled", { seconds: failure.details.retry_after || 60 })
            : failure.status === 401 || failure.status === 400
              ? t("login.failed")
              : t("error.generic", { reason: failure.message });
        error.hidden = false;
      }
    });
    document.addEventListener("keydown", (event) => {
      if (!event.altKey || !this.me) return;
      const key = event.key.toLowerCase();
      const calls = [...this.calls.values()];
      const offered = calls.find((c) => c.phase === "offered");
      const current = calls.find((c) => c.phase !== "offered");
      if (key === "a" && offered) this.act(offered.id, "answer");
      else if (key === "d" && offered) this.act(offered.id, "decline");
      else if (key === "h" && current) this.act(current.id, "hangup");
      else return;
      event.preventDefault();
    });
  }
}

export const banner = new Banner();
window.vmBanner = banner;
banner.boot().catch((error) => banner.showLoggedOut(t("error.generic", { reason: error.message })));
