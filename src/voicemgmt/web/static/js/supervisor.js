// The supervisor page (/superviseur/index.htm): live operators and queues, today's figures,
// charts and call records; forcing an operator's status.
//
// Live state (operators, calls) comes from GET /api/v1/supervision/live (with its stream
// position), then from the account's events after it, applied here. Figures, charts and
// records are the server's reading of the call records (the same the account's reports
// give): read again shortly after each call ends, after a reconnect, and every minute, so
// that what the page shows is always what the records say.

import { Api } from "./api.js";
import { t, translate } from "./i18n.js";
import { LiveStream } from "./live.js";
import "./sup-messages.js";
import { SliceChart, WaitChart } from "./sup-charts.js";
import { Reports } from "./sup-reports.js";
import { renderFigures, renderOperators, renderQueues } from "./sup-tables.js";
import { WebhookPanel } from "./sup-webhooks.js";
import { local } from "./storage.js";

const params = new URLSearchParams(location.search);
const THRESHOLD_KEY = "vm.sup.threshold";
const GROUP_KEY = "vm.sup.group";
const REPORTS_AFTER_END_MS = 400; // several calls ending together: one reading
const REPORTS_EVERY_MS = 60000;
const RECORDS_PAGE = 50;

export class SupervisorPage {
  constructor() {
    this.$ = (id) => document.getElementById(id);
    this.api = null;
    this.stream = null;
    this.groups = new Map();
    this.operators = new Map();
    this.calls = new Map();
    this.handled = new Map();
    this.figures = null;
    this.records = [];
    this.recordsTotal = 0;
    this.recordsLimit = RECORDS_PAGE;
    this.skew = 0; // server clock minus this one, in ms
    this.threshold = clampThreshold(Number(local.getItem(THRESHOLD_KEY)) || 20);
    const group = Number(local.getItem(GROUP_KEY));
    this.filterGroup = Number.isInteger(group) && group > 0 ? group : null;
    this.reports = new Reports(this);
    this.webhooks = new WebhookPanel(this);
    this.drawQueued = false;
    this.day = new Date().toDateString();
    this.slices = new SliceChart(this.$("chart-slices"), this.$("slices-data"));
    this.waits = new WaitChart(this.$("chart-waits"), this.$("waits-data"));
  }

  // --- start and stop ----------------------------------------------------------------------

  async boot() {
    translate();
    document.title = `${t("sup.title")} — Voice Management`;
    this._bind();
    const token = params.get("token_session");
    if (!token) return this.loggedOut(t("sup.no_token"), "no_token");
    this.api = new Api(token);
    this.token = token;
    try {
      const directory = await this.api.get("/api/v1/me/directory");
      if (directory.me.user_type !== "admin") return this.loggedOut(t("sup.wrong_role"), "wrong_role");
      this._directory(directory);
      await this.loadLive();
    } catch (error) {
      if (error.status === 401 || error.status === 404) return this.loggedOut(t("out.invalid"), "invalid_token");
      if (error.status === 403) return this.loggedOut(t("sup.wrong_role"), "wrong_role");
      return this.loggedOut(t("error.generic", { reason: error.message }), "failed");
    }
    this._view("main");
    this.$("controls").hidden = false;
    this.reports.refresh();
    this.webhooks.start();
    setInterval(() => this._tick(), 1000);
    setInterval(() => this.reports.schedule(0), REPORTS_EVERY_MS);
    addEventListener("resize", () => {
      this.slices.resize();
      this.waits.resize();
    });
  }

  loggedOut(message, reason) {
    if (this.stream) this.stream.stop();
    this.stream = null;
    this.reports.stop();
    this.webhooks.stop();
    this.$("out-message").textContent = message;
    this.$("logged-out").dataset.reason = reason;
    this.$("controls").hidden = true;
    this._view("logged-out");
  }

  _view(name) {
    this.$("app").dataset.view = name;
    this.$("loading").hidden = name !== "loading";
    this.$("logged-out").hidden = name !== "logged-out";
    this.$("main").hidden = name !== "main";
  }

  _directory(directory) {
    this.me = directory.me;
    this.$("me-name").textContent = `${directory.me.name} · ${directory.account.name}`;
    this.groups = new Map(directory.groups.map((g) => [g.id_group, { id_group: g.id_group, name: g.name }]));
    this.names = new Map(directory.operators.map((o) => [o.id_op, o.name]));
    if (this.filterGroup !== null && !this.groups.has(this.filterGroup)) this.filterGroup = null;
    const groupFilter = this.$("group-filter");
    groupFilter.replaceChildren(groupFilter.options[0]);
    for (const group of this.groups.values()) groupFilter.append(new Option(group.name, String(group.id_group)));
    groupFilter.value = this.filterGroup === null ? "" : String(this.filterGroup);
    const operatorFilter = this.$("filter-operator");
    operatorFilter.replaceChildren(operatorFilter.options[0]);
    for (const operator of directory.operators) operatorFilter.append(new Option(operator.name, String(operator.id_op)));
  }

  // --- live state ----------------------------------------------------------------------------

  async loadLive() {
    const live = await this.api.get("/api/v1/supervision/live");
    this.skew = Date.parse(live.now) - Date.now();
    const now = Date.now();
    this.operators = new Map(
      live.operators.map((o) => [
        o.id_op,
        {
          id_op: o.id_op,
          name: this.names.get(o.id_op) || `#${o.id_op}`,
          status: o.status,
          presence: o.presence,
          activity: o.activity,
          statusSince: this.local(o.status_since),
          groups: Object.keys(o.groups || {}).map(Number), // id → priority tier
        },
      ]),
    );
    this.calls = new Map(live.calls.map((c) => [c.id_call, this._liveCall(c, now)]));
    this._startStream(live.seq);
    this.draw();
  }

  _liveCall(c, now) {
    const waiting = c.state === "queued" || c.state === "ringing";
    const out = c.direction === "out"; // click-to-call: show the customer, not our own line
    return {
      id_call: c.id_call,
      direction: c.direction,
      state: c.state,
      caller: out ? c.e164 : c.caller_id_num,
      display: c.display ? (out ? c.display.e164 : c.display.caller_id_num) : "",
      id_group: c.id_group,
      id_op: c.id_op,
      ringing: new Set(c.ringing),
      startedAt: this.local(c.started_at),
      queuedAt: waiting ? now - c.wait * 1000 : null,
      answeredAt: c.answered_at ? this.local(c.answered_at) : null,
    };
  }

  _startStream(seq) {
    if (this.stream) this.stream.stop();
    let wasLive = false;
    this.stream = new LiveStream({
      token: this.token,
      onEvent: (frame) => this.apply(frame),
      onState: (state) => {
        const conn = this.$("conn");
        conn.dataset.state = state;
        this.$("conn-label").textContent = t(`conn.${state}`);
        if (state === "live" && wasLive) this.reports.schedule(0); // back after a drop
        if (state === "live") wasLive = true;
      },
      onLoggedOut: () => this.loggedOut(t("out.invalid"), "invalid_token"),
      onReset: () => this.loadLive().then(() => this.reports.schedule(0), () => {}),
    });
    this.stream.start(seq);
  }

  /** Read the directory and the live state again (the directory changed under the page). */
  resync() {
    if (this.resyncing) return;
    this.resyncing = this.api
      .get("/api/v1/me/directory")
      .then((directory) => {
        this._directory(directory);
        return this.loadLive();
      })
      .then(() => this.reports.schedule(0))
      .catch((error) => {
        if (error.status === 401) this.loggedOut(t("out.invalid"), "invalid_token");
      })
      .finally(() => {
        this.resyncing = null;
      });
  }

  /** A server time (ISO) as this clock's milliseconds. */
  local(iso) {
    const at = Date.parse(iso);
    return Number.isNaN(at) ? Date.now() : at - this.skew;
  }

  apply(frame) {
    const data = frame.data || {};
    const at = frame.at ? this.local(frame.at) : Date.now();
    const call = this.calls.get(data.id_call);
    switch (frame.kind) {
      case "operator.status": {
        const operator = this.operators.get(data.id_op);
        if (!operator) return this.resync(); // an operator added since: read everything again
        if (operator.status !== data.status) operator.statusSince = at;
        Object.assign(operator, { status: data.status, presence: data.presence, activity: data.activity });
        break;
      }
      case "call.arrived":
        this.calls.set(data.id_call, {
          id_call: data.id_call, direction: "in", state: "ivr", caller: data.caller_id_num,
          display: data.display ? data.display.caller_id_num : "", id_group: null, id_op: null,
          ringing: new Set(), startedAt: at, queuedAt: null, answeredAt: null,
        });
        break;
      case "call.outbound":
        this.calls.set(data.id_call, {
          id_call: data.id_call, direction: "out", state: "dialing_operator", caller: data.e164_out,
          display: data.display ? data.display.e164_out : "", id_group: null, id_op: data.id_op,
          ringing: new Set(), startedAt: at, queuedAt: null, answeredAt: null,
        });
        break;
      case "call.queued":
        if (call) Object.assign(call, { state: "queued", id_group: data.id_group, queuedAt: at, id_op: null });
        break;
      case "call.offered":
        if (call) {
          call.ringing.add(data.id_op);
          call.state = "ringing";
          call.id_group = data.id_group ?? call.id_group;
        }
        break;
      case "call.offer_withdrawn":
        if (call) {
          call.ringing.delete(data.id_op);
          if (!call.ringing.size && call.state === "ringing") call.state = "queued";
        }
        break;
      case "call.answered":
        if (call) {
          Object.assign(call, { state: "connected", id_op: data.id_op, queuedAt: null });
          call.ringing.clear();
          if (call.answeredAt === null) call.answeredAt = at;
        }
        break;
      case "call.held":
        if (call) call.state = "held";
        break;
      case "call.resumed":
        if (call) call.state = "connected";
        break;
      case "call.transferred":
        if (call) {
          Object.assign(call, { state: "queued", id_op: null, queuedAt: at });
          call.ringing.clear();
        }
        break;
      case "call.overflowed":
        if (call && data.to_group) call.id_group = data.to_group;
        break;
      case "webhook.disabled":
        this.webhooks.refresh();
        return;
      case "call.ended":
        this.calls.delete((data.record || {}).id_call);
        this.reports.schedule(REPORTS_AFTER_END_MS);
        break;
      default:
        return;
    }
    this.draw();
  }

  /** Who is on which call: connected, held or dialling, else ringing for them. */
  callOf(operatorId) {
    let ringing = null;
    for (const call of this.calls.values()) {
      if (call.id_op === operatorId && call.state !== "queued") return call;
      if (call.ringing.has(operatorId)) ringing = call;
    }
    return ringing;
  }

  waitOf(call, now) {
    return call.queuedAt === null ? 0 : Math.max(0, (now - call.queuedAt) / 1000);
  }

  visibleGroups() {
    const groups = [...this.groups.values()];
    return this.filterGroup === null ? groups : groups.filter((g) => g.id_group === this.filterGroup);
  }

  visibleOperators() {
    const operators = [...this.operators.values()].sort((a, b) => a.name.localeCompare(b.name));
    if (this.filterGroup === null) return operators;
    return operators.filter((o) => o.groups.includes(this.filterGroup));
  }

  /** Redraw the live tables once per frame, however many events came. */
  draw() {
    if (this.drawQueued) return;
    this.drawQueued = true;
    requestAnimationFrame(() => {
      this.drawQueued = false;
      this._drawLive();
    });
  }

  _drawLive() {
    const now = Date.now();
    renderQueues(this, now);
    renderOperators(this, now);
  }

  _tick() {
    this._drawLive();
    const today = new Date();
    this.$("today").textContent = t("sup.today_is", {
      date: today.toLocaleDateString(document.documentElement.lang, { weekday: "long", day: "numeric", month: "long" }),
    });
    if (today.toDateString() !== this.day) {
      this.day = today.toDateString();
      this.reports.schedule(0); // a new day: figures start again from zero
    }
  }

  async forceStatus(operatorId, status, select) {
    const operator = this.operators.get(operatorId);
    select.disabled = true;
    this._notice("");
    try {
      await this.api.put(`/api/v1/supervision/operators/${operatorId}/status`, { status });
    } catch (error) {
      this._notice(t("sup.force_failed", { reason: error.message }));
      if (operator) select.value = operator.presence;
      if (error.status === 401) this.loggedOut(t("out.invalid"), "invalid_token");
    } finally {
      select.disabled = false;
    }
  }

  _notice(text) {
    const notice = this.$("notice");
    notice.textContent = text;
    notice.hidden = !text;
  }

  // --- controls --------------------------------------------------------------------------

  _bind() {
    const threshold = this.$("threshold");
    threshold.value = String(this.threshold);
    threshold.addEventListener("change", () => {
      this.threshold = clampThreshold(Number(threshold.value));
      threshold.value = String(this.threshold);
      local.setItem(THRESHOLD_KEY, String(this.threshold));
      this.reports.refresh();
    });
    this.$("group-filter").addEventListener("change", (event) => {
      const value = Number(event.target.value);
      this.filterGroup = value > 0 ? value : null;
      local.setItem(GROUP_KEY, this.filterGroup === null ? "" : String(this.filterGroup));
      this.recordsLimit = RECORDS_PAGE;
      this._drawLive();
      if (this.figures) renderFigures(this);
      this.reports.refresh();
    });
    for (const id of ["filter-outcome", "filter-direction", "filter-operator"]) {
      this.$(id).addEventListener("change", () => {
        this.recordsLimit = RECORDS_PAGE;
        this.reports.refresh();
      });
    }
    this.$("record-filters").addEventListener("submit", (event) => event.preventDefault());
    this.$("records-more").addEventListener("click", () => {
      this.recordsLimit = Math.min(1000, this.recordsLimit + RECORDS_PAGE * 2);
      this.reports.refresh();
    });
    this.$("export-csv").addEventListener("click", () => this.reports.exportCsv());
  }
}

function clampThreshold(value) {
  return Number.isFinite(value) ? Math.min(3600, Math.max(1, Math.round(value))) : 20;
}

new SupervisorPage().boot();
