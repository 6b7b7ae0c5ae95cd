// The operator banner (/operateurs/index.htm): status, calls, dial pad, recent and missed
// calls, screen-pop; live over the account's event stream.
//
// State comes from GET /api/v1/me/state (with its stream position), then from the events
// after it. Several tabs of one operator each show everything; one of them (the holder of a
// Web Lock) rings, opens the CRM's customer file and picks up the operator's own line of a
// click-to-call, so that a call rings in one place.
//
// This module is the banner itself: login and logout, the state snapshot, the listeners, the
// actions. Beside it: banner-events.js (the stream's events applied to calls and status),
// notify.js (what cnx.js is told), screen-pop.js, banner-page.js (views, tabs, controls).

import { Api } from "./api.js";
import { announceState, applyEvent, callFromSnapshot } from "./banner-events.js";
import { bindPage, render as renderPage, selectTab, showConnection, showView, tick } from "./banner-page.js";
import { CallCards } from "./cards.js";
import { CnxBridge } from "./cnx-bridge.js";
import { t, translate } from "./i18n.js";
import { CallLists } from "./lists.js";
import { LiveStream } from "./live.js";
import { cnxState } from "./notify.js";
import { Ringer } from "./ringer.js";
import { crmWindowName } from "./screen-pop.js";
import { session } from "./storage.js";

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "vm.token";

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
    bindPage(this);
    if (CnxBridge.wanted(params)) this.bridge = new CnxBridge(this);
    setInterval(() => tick(this), 1000);
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
    showView("loading");
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
    showView("main");
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
    showView("out");
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
      const call = callFromSnapshot(this, snapshot);
      if (call) this.calls.set(call.id, call);
    }
    this.stream = new LiveStream({
      token: this.token,
      onEvent: (frame) => this.onEvent(frame),
      onState: (state) => showConnection(state),
      onLoggedOut: () => this.showLoggedOut(t("out.invalid")),
      onReset: () => this.loadState().catch((error) => this.failed(error)),
    });
    this.stream.start(state.seq, state.epoch);
    this.render();
    announceState(this);
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

  // --- the event stream --------------------------------------------------------------------

  onEvent(frame) {
    if (applyEvent(this, frame)) this.render();
  }

  /** What a CRM page learns when cnx.js connects: the status and the calls going on. */
  cnxState() {
    return cnxState(this);
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

  // --- screen-pop (screen-pop.js) -----------------------------------------------------------

  crmWindowName() {
    return crmWindowName(this.account);
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
    selectTab(this, "dial");
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

  // --- the page (banner-page.js) ------------------------------------------------------------

  render() {
    renderPage(this);
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
}

export const banner = new Banner();
window.vmBanner = banner;
banner.boot().catch((error) => banner.showLoggedOut(t("error.generic", { reason: error.message })));
