// The supervisor page's webhooks panel: the account's subscriptions, their state and latest
// attempts (GET /api/v1/supervision/webhooks), read at start, every 15 s, and at once when a
// webhook is disabled. Everything the server sends is shown with textContent only.

import { t } from "./i18n.js";

const EVERY_MS = 15000;

export class WebhookPanel {
  constructor(page) {
    this.page = page;
    this.timer = null;
  }

  start() {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), EVERY_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async refresh() {
    const page = this.page;
    try {
      const listing = await page.api.get("/api/v1/supervision/webhooks");
      this.render(listing.items);
    } catch (error) {
      if (error.status === 401) return page.loggedOut(t("out.invalid"), "invalid_token");
      page.$("webhooks-note").textContent = t("sup.webhooks_failed", { reason: error.message });
    }
  }

  render(items) {
    const page = this.page;
    const section = page.$("webhooks-panel");
    section.hidden = items.length === 0;
    const body = page.$("webhooks").tBodies[0];
    body.replaceChildren(...items.map((hook) => this.row(hook)));
    page.$("webhooks-note").textContent = "";
    section.dataset.readAt = String(Date.now());
  }

  row(hook) {
    const tr = document.createElement("tr");
    tr.dataset.idWebhook = String(hook.id_webhook);
    tr.dataset.state = hook.state;
    const url = cell(hook.url, "url");
    if (hook.description) url.title = hook.description;
    const events = cell(hook.events.includes("*") ? t("sup.webhook_all_events") : hook.events.join(", "));
    const state = document.createElement("td");
    const pill = document.createElement("span");
    pill.className = `pill webhook-${hook.state}`;
    pill.textContent = t(`sup.webhook_${hook.state}`);
    state.append(pill);
    if (hook.failing_since) {
      const since = document.createElement("div");
      since.className = "failing-since";
      since.textContent = t("sup.webhook_failing_since", { when: shortTime(hook.failing_since) });
      state.append(since);
    }
    const attempts = document.createElement("td");
    const list = document.createElement("ul");
    list.className = "attempts";
    for (const attempt of hook.last_attempts) {
      const item = document.createElement("li");
      item.dataset.ok = String(attempt.ok);
      const code = attempt.response_code === null ? "—" : String(attempt.response_code);
      const parts = [shortTime(attempt.at), attempt.kind, attempt.ok ? "✓" : "✗", code, `${attempt.latency_ms} ms`];
      if (attempt.error) parts.push(attempt.error);
      item.textContent = parts.join(" · ");
      list.append(item);
    }
    if (!hook.last_attempts.length) {
      const none = document.createElement("li");
      none.textContent = t("sup.webhook_no_attempts");
      list.append(none);
    }
    attempts.append(list);
    tr.append(url, events, state, attempts);
    return tr;
  }
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function shortTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString();
}
