// The supervisor page's two charts, drawn with uPlot (served by the product, no CDN): calls
// per slice of the day (answered and missed as bars, abandoned as dots) and the waiting-time
// distribution of queued calls. Each chart has a plain table beside it (read by screen
// readers, and by the tests) holding exactly the figures drawn.

import uPlot from "/static/vendor/uplot/uPlot.esm.js";
import { lang, t } from "./i18n.js";

const COLOURS = { answered: "#1f9d55", missed: "#c62f2f", abandoned: "#d49b00", axis: "#5d6677", grid: "#dfe3ea" };
const HEIGHT = 220;
const OUTCOMES = ["answered", "abandoned", "missed", "overflowed", "failed"];

function width(el) {
  return Math.max(240, Math.floor(el.clientWidth || el.parentElement.clientWidth || 480));
}

function axis(extra = {}) {
  return { stroke: COLOURS.axis, grid: { stroke: COLOURS.grid, width: 1 }, ticks: { stroke: COLOURS.grid }, ...extra };
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.append(td);
  return td;
}

const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });

/** Calls per slice: x is each slice's start (epoch seconds). */
export class SliceChart {
  constructor(el, table) {
    this.el = el;
    this.table = table;
    this.plot = null;
  }

  _make(data) {
    const bars = (align) => uPlot.paths.bars({ size: [0.4, 24], align });
    this.plot = new uPlot(
      {
        width: width(this.el),
        height: HEIGHT,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] } },
        axes: [
          axis({ space: 72, values: (u, ticks) => ticks.map((v) => clock.format(new Date(v * 1000))) }),
          axis({ values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? String(v) : "")) }),
        ],
        series: [
          {},
          { label: t("fig.answered"), stroke: COLOURS.answered, fill: COLOURS.answered, paths: bars(-1), points: { show: false } },
          { label: t("fig.missed"), stroke: COLOURS.missed, fill: COLOURS.missed, paths: bars(1), points: { show: false } },
          // abandoned calls as dots over the bars, where there are any
          { label: t("fig.abandoned"), stroke: COLOURS.abandoned, paths: () => null, points: { show: true, size: 8, fill: COLOURS.abandoned } },
        ],
      },
      data,
      this.el,
    );
  }

  update(charts) {
    const buckets = charts.buckets || [];
    const xs = buckets.map((b) => Date.parse(b.start) / 1000);
    const data = [
      xs,
      buckets.map((b) => b.answered),
      buckets.map((b) => b.missed),
      buckets.map((b) => b.abandoned || null),
    ];
    if (this.plot) this.plot.setData(data);
    else this._make(data);
    const body = this.table.tBodies[0];
    body.replaceChildren();
    for (const bucket of buckets) {
      if (!OUTCOMES.some((o) => bucket[o])) continue;
      const row = document.createElement("tr");
      row.dataset.start = bucket.start;
      cell(row, clock.format(new Date(bucket.start)));
      for (const outcome of OUTCOMES) cell(row, String(bucket[outcome])).dataset.outcome = outcome;
      body.append(row);
    }
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: width(this.el), height: HEIGHT });
  }
}

/** Waiting time of queued calls, by bin (0–10 s, 10–20 s, …, 300 s and more). */
export class WaitChart {
  constructor(el, table) {
    this.el = el;
    this.table = table;
    this.plot = null;
    this.labels = [];
  }

  /** "10–20", "≥ 300": seconds (the axis says so). */
  static label(bin) {
    return bin.to === null ? `≥ ${bin.from}` : `${bin.from}–${bin.to}`;
  }

  _make(data) {
    this.plot = new uPlot(
      {
        width: width(this.el),
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false } },
        scales: {
          x: { time: false, range: (u) => [-0.5, Math.max(0, u.data[0].length - 0.5)] },
          y: { range: (u, min, max) => [0, Math.max(4, Math.ceil(max * 1.15))] },
        },
        axes: [
          axis({
            label: t("sup.wait_seconds"),
            labelSize: 20,
            splits: (u) => u.data[0],
            values: (u, ticks) => ticks.map((v) => this.labels[v] ?? ""),
          }),
          axis({ values: (u, ticks) => ticks.map((v) => (Number.isInteger(v) ? String(v) : "")) }),
        ],
        series: [
          {},
          { label: t("col.calls"), stroke: "#2457d6", fill: "#2457d6", paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } },
        ],
      },
      data,
      this.el,
    );
  }

  update(charts) {
    const bins = charts.wait || [];
    this.labels = bins.map((bin) => WaitChart.label(bin));
    const data = [bins.map((_, index) => index), bins.map((bin) => bin.calls)];
    if (this.plot) this.plot.setData(data);
    else this._make(data);
    const body = this.table.tBodies[0];
    body.replaceChildren();
    for (const bin of bins) {
      const row = document.createElement("tr");
      row.dataset.from = String(bin.from);
      cell(row, `${WaitChart.label(bin)} s`);
      cell(row, String(bin.calls)).dataset.calls = String(bin.calls);
      body.append(row);
    }
  }

  resize() {
    if (this.plot) this.plot.setSize({ width: width(this.el), height: HEIGHT });
  }
}
