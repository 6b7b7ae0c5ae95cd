// Recent and missed calls of the banner, each with a call-back button.

import { t, translate } from "./i18n.js";
import { duration, phone, when } from "./format.js";
import { local } from "./storage.js";

const SEEN_KEY = "vm.missed_seen";

/** The customer's number of a record: who called in, or whom the operator called. */
export function customerOf(record) {
  return record.direction === "out"
    ? { number: record.service_number, display: record.display && record.display.service_number }
    : { number: record.caller_number, display: record.display && record.display.caller_number };
}

export class CallLists {
  constructor(banner, template) {
    this.banner = banner;
    this.template = template;
    this.recent = document.getElementById("recent-list");
    this.missed = document.getElementById("missed-list");
    this.count = document.getElementById("missed-count");
    this.timer = null;
  }

  /** Reload both lists soon (several calls ending together make one request each). */
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh(), 300);
  }

  async refresh() {
    const api = this.banner.api;
    if (!api) return;
    try {
      const [recent, missed] = await Promise.all([
        api.get("/api/v1/me/calls?kind=recent&limit=30"),
        api.get("/api/v1/me/calls?kind=missed&limit=30"),
      ]);
      this._fill(this.recent, recent.items);
      this._fill(this.missed, missed.items);
      this.missedItems = missed.items;
      this.updateCount();
    } catch (error) {
      this.banner.failed(error);
    }
  }

  markMissedSeen() {
    local.setItem(`${SEEN_KEY}.${this.banner.me.id}`, new Date().toISOString());
    this.updateCount();
  }

  updateCount() {
    const seen = local.getItem(`${SEEN_KEY}.${this.banner.me.id}`) || "";
    const unseen = (this.missedItems || []).filter((r) => r.date_end > seen).length;
    this.count.hidden = unseen === 0;
    this.count.textContent = String(unseen);
  }

  _fill(list, items) {
    list.replaceChildren();
    if (!items.length) {
      const empty = document.createElement("li");
      empty.className = "list-empty";
      empty.textContent = t("list.none");
      list.append(empty);
      return;
    }
    for (const record of items) list.append(this._item(record));
  }

  _item(record) {
    const item = this.template.content.firstElementChild.cloneNode(true);
    translate(item);
    const customer = customerOf(record);
    item.dataset.call = record.id_call;
    item.dataset.outcome = record.outcome;
    item.querySelector(".list-direction").textContent = t(`list.${record.direction}`);
    item.querySelector(".list-number").textContent =
      phone(customer.number, customer.display) || t("call.withheld");
    item.querySelector(".list-number").title = customer.number;
    item.querySelector(".list-when").textContent = when(record.date);
    item.querySelector(".list-outcome").textContent = t(`outcome.${record.outcome}`);
    item.querySelector(".list-duration").textContent =
      record.duration_comm > 0 ? duration(record.duration_comm) : "";
    const button = item.querySelector(".list-call-back");
    button.hidden = !/^[0-9]{4,15}$/.test(customer.number || "");
    button.addEventListener("click", () => this.banner.dial(customer.number));
    return item;
  }
}
