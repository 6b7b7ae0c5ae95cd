// The call cards of the banner: one per live call of the operator, built from a template and
// filled with textContent only (caller ids and IVR data are never HTML).

import { t, translate } from "./i18n.js";
import { duration, phone } from "./format.js";

// Which buttons each phase of a call offers.
const ACTIONS = {
  offered: ["answer", "decline"],
  dialing_me: ["answer", "hangup"],
  dialing: ["hangup"],
  connected: ["hold", "transfer", "hangup"],
  held: ["unhold", "transfer", "hangup"],
};

const KIND = {
  offered: "call.incoming",
  dialing_me: "call.dialing_me",
  dialing: "call.dialing",
  connected: "call.connected",
  held: "call.held",
};

export class CallCards {
  constructor(container, template, banner) {
    this.container = container;
    this.template = template;
    this.banner = banner;
    this.elements = new Map(); // id_call → <article>
    this.empty = document.createElement("p");
    this.empty.className = "no-call";
    this.empty.dataset.i18n = "calls.none";
  }

  render(calls) {
    for (const [id, element] of this.elements) {
      if (!calls.has(id)) {
        element.remove();
        this.elements.delete(id);
      }
    }
    for (const call of calls.values()) {
      let element = this.elements.get(call.id);
      const fresh = !element;
      if (fresh) {
        element = this._build(call);
        this.elements.set(call.id, element);
        this.container.prepend(element);
      }
      this._fill(element, call);
      if (fresh && call.phase === "offered" && document.hasFocus()) {
        element.querySelector('[data-action="answer"]').focus({ preventScroll: true });
      }
    }
    if (calls.size === 0 && !this.empty.isConnected) {
      this.empty.textContent = t("calls.none");
      this.container.append(this.empty);
    } else if (calls.size > 0) {
      this.empty.remove();
    }
    this.tick();
  }

  /** Counters only: called every second. */
  tick() {
    const now = Date.now();
    for (const [id, element] of this.elements) {
      const call = this.banner.calls.get(id);
      if (!call) continue;
      element.querySelector(".call-timer").textContent = duration(this._timerSeconds(call, now));
      if (call.phase === "offered") {
        element.querySelector(".wait").textContent = duration(call.waitAt(now));
      }
    }
  }

  _timerSeconds(call, now) {
    if (call.phase === "offered") return call.waitAt(now);
    if (call.answeredAt) return (now - call.answeredAt) / 1000;
    return (now - call.startedAt) / 1000;
  }

  _build(call) {
    const element = this.template.content.firstElementChild.cloneNode(true);
    translate(element);
    element.dataset.call = call.id;
    element.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button && element.contains(button)) this.banner.act(call.id, button.dataset.action);
    });
    const form = element.querySelector(".transfer-form");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = form.querySelector(".transfer-target").value;
      if (value) this.banner.transfer(call.id, value);
    });
    form.querySelector(".transfer-cancel").addEventListener("click", () => {
      form.hidden = true;
    });
    return element;
  }

  _fill(element, call) {
    element.dataset.phase = call.phase;
    element.dataset.direction = call.direction;
    element.querySelector(".call-kind").textContent = t(
      call.transferred && call.phase === "offered" ? "call.transferred_to_me" : KIND[call.phase],
    );
    element.querySelector(".caller-display").textContent =
      phone(call.number, call.display) || t("call.withheld");
    element.querySelector(".caller-digits").textContent = call.number;
    const banner = this.banner;
    const calledFact = element.querySelector(".called-fact");
    calledFact.hidden = call.direction !== "in";
    if (call.direction === "in") {
      const number = banner.numbers.get(call.called);
      element.querySelector(".called-label").textContent = (number && number.label) || "";
      element.querySelector(".called-number").textContent = phone(call.called, number && number.display);
    }
    const groupFact = element.querySelector(".group-fact");
    groupFact.hidden = call.group === null || call.group === undefined;
    if (!groupFact.hidden) {
      const group = banner.groups.get(call.group);
      element.querySelector(".group").textContent = group ? group.name : `#${call.group}`;
    }
    const waitFact = element.querySelector(".wait-fact");
    waitFact.hidden = call.direction !== "in";
    if (call.phase !== "offered") {
      element.querySelector(".wait").textContent = duration(call.waitFinal ?? call.wait0);
    }
    const ticketFact = element.querySelector(".ticket-fact");
    ticketFact.hidden = !call.ticket;
    element.querySelector(".ticket").textContent = call.ticket || "";
    this._variables(element.querySelector(".variables"), call.variables);
    const link = element.querySelector(".crm-link");
    link.hidden = !call.crmUrl;
    if (call.crmUrl) {
      link.href = call.crmUrl;
      link.target = banner.crmWindowName();
    }
    const allowed = new Set(ACTIONS[call.phase] || []);
    for (const button of element.querySelectorAll("button[data-action]")) {
      button.hidden = !allowed.has(button.dataset.action);
      button.disabled = Boolean(call.busy);
    }
    if (!allowed.has("transfer")) element.querySelector(".transfer-form").hidden = true;
  }

  _variables(list, variables) {
    const entries = Object.entries(variables || {});
    const key = JSON.stringify(entries);
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren();
    list.hidden = entries.length === 0;
    for (const [name, value] of entries) {
      const row = document.createElement("div");
      row.className = "fact";
      const dt = document.createElement("dt");
      dt.textContent = name.replace(/_/g, " ");
      const dd = document.createElement("dd");
      dd.textContent = String(value);
      dd.dataset.variable = name;
      row.append(dt, dd);
      list.append(row);
    }
  }

  /** Show the transfer form of a call, with who is available now. */
  openTransfer(callId, operators, groups, myId) {
    const element = this.elements.get(callId);
    if (!element) return;
    const form = element.querySelector(".transfer-form");
    const ops = form.querySelector(".transfer-operators");
    const grs = form.querySelector(".transfer-groups");
    ops.replaceChildren();
    grs.replaceChildren();
    for (const operator of operators) {
      if (operator.id_op === myId) continue;
      const option = document.createElement("option");
      option.value = `op:${operator.id_op}`;
      option.textContent = `${operator.name} — ${t(`status.${operator.status}`)}`;
      option.disabled = operator.status !== "online";
      ops.append(option);
    }
    for (const group of groups) {
      const option = document.createElement("option");
      option.value = `group:${group.id_group}`;
      option.textContent = group.name;
      grs.append(option);
    }
    form.hidden = false;
    form.querySelector(".transfer-target").focus();
  }
}
