// The supervisor page's figures, charts and records: the server's reading of the call
// records, read again shortly after calls end, after a reconnect and every minute (one
// reading at a time; the last asked wins), and the CSV export of the filtered day.

import { t } from "./i18n.js";
import { renderFigures, renderRecords } from "./sup-tables.js";

const CSV_PAGE = 1000;
const SLICE_SECONDS = 900;

export class Reports {
  constructor(page) {
    this.page = page;
    this.timer = null;
    this.running = null;
    this.again = false;
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(delay) {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.refresh();
    }, delay);
  }

  /** Read figures, charts and records again; one reading at a time, the last one wins. */
  async refresh() {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this._read().finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
    return this.running;
  }

  window() {
    const page = this.page;
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    return { since: new Date(midnight.getTime() + page.skew).toISOString() };
  }

  recordQuery(extra = {}) {
    const page = this.page;
    const query = new URLSearchParams(this.window());
    if (page.filterGroup !== null) query.set("id_group", page.filterGroup);
    for (const [name, id] of [["outcome", "filter-outcome"], ["direction", "filter-direction"], ["id_op", "filter-operator"]]) {
      const value = page.$(id).value;
      if (value) query.set(name, value);
    }
    for (const [name, value] of Object.entries(extra)) query.set(name, value);
    return query;
  }

  async _read() {
    const page = this.page;
    const window = this.window();
    const figures = new URLSearchParams({ ...window, service_level: page.threshold });
    const charts = new URLSearchParams({ ...window, bucket: SLICE_SECONDS });
    if (page.filterGroup !== null) charts.set("id_group", page.filterGroup);
    try {
      const [readFigures, readCharts, readRecords] = await Promise.all([
        page.api.get(`/api/v1/supervision/figures?${figures}`),
        page.api.get(`/api/v1/supervision/charts?${charts}`),
        page.api.get(`/api/v1/supervision/call-records?${this.recordQuery({ limit: page.recordsLimit })}`),
      ]);
      page.figures = readFigures;
      page.handled = new Map(readFigures.operators.map((o) => [o.id_op, o]));
      page.records = readRecords.items;
      page.recordsTotal = readRecords.total;
      page._notice("");
      renderFigures(page);
      page.slices.update(readCharts);
      page.waits.update(readCharts);
      renderRecords(page);
      this._foot();
      page._drawLive();
      page.$("main").dataset.reportsAt = String(Date.now());
    } catch (error) {
      if (error.status === 401) return page.loggedOut(t("out.invalid"), "invalid_token");
      page._notice(t("sup.reports_failed", { reason: error.message }));
    }
  }

  _foot() {
    const page = this.page;
    page.$("records-count").textContent = t("sup.records_count", { shown: page.records.length, total: page.recordsTotal });
    page.$("records-more").hidden = page.records.length >= page.recordsTotal;
  }

  async exportCsv() {
    const page = this.page;
    const button = page.$("export-csv");
    button.disabled = true;
    button.textContent = t("sup.exporting");
    try {
      // How many there are, then pages of CSV; each page after the first without its header
      // (a cell may hold a line break, so pages are cut at the first line end only).
      const counted = await page.api.get(`/api/v1/supervision/call-records?${this.recordQuery({ limit: 1 })}`);
      const parts = [];
      for (let offset = 0; offset === 0 || offset < counted.total; offset += CSV_PAGE) {
        const query = this.recordQuery({ format: "csv", limit: CSV_PAGE, offset });
        const response = await fetch(`/api/v1/supervision/call-records?${query}`, {
          headers: { Authorization: `Bearer ${page.token}`, Accept: "text/csv" },
          cache: "no-store",
          credentials: "omit",
        });
        if (!response.ok) throw new Error(response.statusText || String(response.status));
        const text = await response.text();
        parts.push(offset === 0 ? text : text.slice(text.indexOf("\r\n") + 2));
      }
      const blob = new Blob(parts, { type: "text/csv;charset=utf-8" });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = `calls-${new Date().toISOString().slice(0, 10)}.csv`;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch (error) {
      page._notice(t("error.generic", { reason: error.message }));
    } finally {
      button.disabled = false;
      button.textContent = t("sup.export");
    }
  }
}
