// The supervisor page's tables, drawn from the page's model. Everything that comes from a
// caller (numbers, IVR data) or from the directory is set as text, never as HTML.

import { duration, phone, when } from "./format.js";
import { lang, t } from "./i18n.js";

export const STATUSES = ["online", "busy", "break", "offline"];
export const FIGURES = ["offered", "answered", "abandoned", "missed", "overflowed", "failed"];
const percent = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 0 });
const WAITING_STATES = new Set(["queued", "ringing"]);
const WAITING_SHOWN = 10; // the longest waits; the count per group says how many in all

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function td(row, text, className) {
  const cell = el("td", className, text);
  row.append(cell);
  return cell;
}

function emptyRow(body, columns, key) {
  const row = el("tr");
  const cell = td(row, t(key), "empty");
  cell.colSpan = columns;
  body.replaceChildren(row);
}

/** A figure cell: the formatted value as text, the raw value in data-value. */
export function figureCell(row, name, value) {
  const cell = td(row, formatFigure(name, value), "num");
  cell.dataset.figure = name;
  cell.dataset.value = value === null || value === undefined ? "" : String(value);
  return cell;
}

export function formatFigure(name, value) {
  if (value === null || value === undefined) return "—";
  if (name === "service_level") return percent.format(value);
  if (name === "average_wait" || name === "longest_wait" || name === "average_talk") {
    return duration(Math.round(value));
  }
  return String(value);
}

/** Calls waiting in a group (queued or ringing) and how long the longest has waited. */
export function waitingIn(page, groupId, now) {
  const calls = [...page.calls.values()].filter(
    (call) => call.id_group === groupId && WAITING_STATES.has(call.state),
  );
  const longest = calls.reduce((most, call) => Math.max(most, page.waitOf(call, now)), 0);
  return { calls, longest };
}

export function renderQueues(page, now) {
  const body = page.$("queues").tBodies[0];
  const groups = page.visibleGroups();
  if (!groups.length) return emptyRow(body, 6, "sup.no_waiting");
  const rows = groups.map((group) => {
    const { calls, longest } = waitingIn(page, group.id_group, now);
    const counts = { online: 0, busy: 0, break: 0, offline: 0 };
    for (const operator of page.operators.values()) {
      if (operator.groups.includes(group.id_group)) counts[operator.status] += 1;
    }
    const row = el("tr");
    row.dataset.idGroup = String(group.id_group);
    td(row, group.name);
    const waiting = td(row, String(calls.length), "num");
    waiting.dataset.field = "waiting";
    const wait = td(row, calls.length ? duration(longest) : "—", "num");
    wait.dataset.field = "longest_wait";
    wait.dataset.value = String(Math.floor(longest));
    if (longest >= page.threshold) wait.classList.add("hot");
    for (const status of ["online", "busy", "break"]) {
      td(row, String(counts[status]), "num").dataset.field = status;
    }
    return row;
  });
  body.replaceChildren(...rows);
  renderWaiting(page, now);
}

function renderWaiting(page, now) {
  const list = page.$("waiting");
  const shown = new Set(page.visibleGroups().map((g) => g.id_group));
  const calls = [...page.calls.values()]
    .filter((call) => WAITING_STATES.has(call.state) && shown.has(call.id_group))
    .sort((a, b) => page.waitOf(b, now) - page.waitOf(a, now));
  if (!calls.length) {
    list.replaceChildren(el("li", "empty", t("sup.no_waiting")));
    return;
  }
  const more = calls.length - WAITING_SHOWN;
  list.replaceChildren(
    ...calls.slice(0, WAITING_SHOWN).map((call) => {
      const item = el("li", call.state === "ringing" ? "ringing" : "");
      item.dataset.idCall = call.id_call;
      const who = el("span", "who-calls");
      who.append(el("span", "number", phone(call.caller, call.display)));
      const group = page.groups.get(call.id_group);
      who.append(el("span", "digits", [group ? group.name : "", call.state === "ringing" ? t("sup.ringing") : ""].filter(Boolean).join(" · ")));
      item.append(who, el("span", "wait", duration(page.waitOf(call, now))));
      return item;
    }),
    ...(more > 0 ? [el("li", "empty", t("sup.more_waiting", { count: more }))] : []),
  );
}

export function renderOperators(page, now) {
  const body = page.$("operators").tBodies[0];
  const operators = page.visibleOperators();
  if (!operators.length) return emptyRow(body, 6, "sup.no_operators");
  const keep = new Map([...body.rows].map((row) => [row.dataset.idOp, row]));
  const rows = operators.map((operator) => {
    const row = keep.get(String(operator.id_op)) || operatorRow(page, operator);
    fillOperator(page, row, operator, now);
    return row;
  });
  const same = rows.length === body.rows.length && rows.every((row, i) => body.rows[i] === row);
  if (!same) body.replaceChildren(...rows);
}

function operatorRow(page, operator) {
  const row = el("tr");
  row.dataset.idOp = String(operator.id_op);
  const name = td(row, "");
  name.dataset.field = "name";
  const status = td(row, "");
  status.dataset.field = "status";
  td(row, "", "num").dataset.field = "since";
  td(row, "").dataset.field = "call";
  td(row, "", "num").dataset.field = "handled";
  const force = td(row, "");
  const select = el("select");
  select.dataset.field = "force";
  select.setAttribute("aria-label", `${t("col.force")}: ${operator.name}`);
  for (const value of STATUSES) {
    const option = el("option", "", t(`status.${value}`));
    option.value = value;
    select.append(option);
  }
  select.addEventListener("change", () => page.forceStatus(operator.id_op, select.value, select));
  force.append(select);
  return row;
}

function fillOperator(page, row, operator, now) {
  const field = (name) => row.querySelector(`[data-field="${name}"]`);
  field("name").textContent = operator.name;
  const status = field("status");
  status.dataset.status = operator.status;
  const pill = el("span", `pill ${operator.status}`, t(`status.${operator.status}`));
  const activity = operator.activity && operator.activity !== "idle" ? el("span", "activity", t(`activity.${operator.activity}`)) : null;
  status.replaceChildren(...(activity ? [pill, activity] : [pill]));
  field("since").textContent = operator.statusSince ? duration((now - operator.statusSince) / 1000) : "—";
  const call = page.callOf(operator.id_op);
  const cell = field("call");
  cell.replaceChildren();
  if (call) {
    const group = page.groups.get(call.id_group);
    const held = call.state === "held" ? ` · ${t("sup.on_hold")}` : "";
    const ringing = call.state === "ringing" ? ` · ${t("sup.ringing")}` : "";
    cell.append(el("span", "number", phone(call.caller, call.display)));
    const since = call.answeredAt ?? call.startedAt;
    cell.append(el("span", "digits", `${duration((now - since) / 1000)}${group ? ` · ${group.name}` : ""}${held}${ringing}`));
    cell.dataset.idCall = call.id_call;
  } else {
    cell.textContent = "—";
    delete cell.dataset.idCall;
  }
  const handled = page.handled.get(operator.id_op);
  field("handled").textContent = String(handled ? handled.answered : 0);
  const select = field("force");
  if (document.activeElement !== select && !select.disabled) select.value = operator.presence;
}

export function renderFigures(page) {
  const body = page.$("figures").tBodies[0];
  const figures = page.figures;
  if (!figures) return;
  const byGroup = new Map(figures.groups.filter((g) => g.id_group !== null).map((g) => [g.id_group, g]));
  const total = figures.groups.find((g) => g.id_group === null);
  const groups = [...page.groups.values()];
  for (const id of byGroup.keys()) if (!page.groups.has(id)) groups.push({ id_group: id, name: `#${id}` });
  const rows = groups.map((group) => figureRow(group.name, byGroup.get(group.id_group), group.id_group, page.filterGroup));
  const totalRow = figureRow(t("sup.total"), total, null, null);
  totalRow.classList.add("total");
  body.replaceChildren(...rows, totalRow);
  const tiles = page.filterGroup === null ? total : byGroup.get(page.filterGroup);
  for (const tile of document.querySelectorAll("[data-total]")) {
    const name = tile.dataset.total;
    const value = tiles ? tiles[name] : name in ZERO ? ZERO[name] : null;
    tile.textContent = formatFigure(name, value);
    tile.dataset.value = value === null || value === undefined ? "" : String(value);
  }
  const label = page.$("sl-label");
  label.textContent = `${t("fig.service_level")} (${figures.service_level_seconds} s)`;
  label.title = t("sup.service_level", { seconds: figures.service_level_seconds });
}

const ZERO = { offered: 0, answered: 0, abandoned: 0, missed: 0, overflowed: 0, failed: 0 };

function figureRow(name, figures, groupId, selected) {
  const row = el("tr");
  row.dataset.idGroup = groupId === null ? "total" : String(groupId);
  if (selected !== null && selected === groupId) row.classList.add("selected");
  td(row, name);
  const values = figures || { ...ZERO, average_wait: null, longest_wait: null, average_talk: null, service_level: null };
  for (const field of [...FIGURES, "average_wait", "longest_wait", "average_talk", "service_level"]) {
    figureCell(row, field, values[field]);
  }
  return row;
}

export function renderRecords(page) {
  const body = page.$("records").tBodies[0];
  const items = page.records;
  if (!items.length) return emptyRow(body, 9, "sup.no_records");
  body.replaceChildren(
    ...items.map((record) => {
      const row = el("tr");
      row.dataset.idCall = record.id_call;
      td(row, when(record.date));
      td(row, t(record.direction === "out" ? "list.out" : "list.in"));
      const caller = td(row, phone(record.caller_number, record.display && record.display.caller_number));
      caller.dataset.field = "caller";
      td(row, phone(record.service_number, record.display && record.display.service_number));
      const group = page.groups.get(record.id_group);
      td(row, group ? group.name : record.id_group ? `#${record.id_group}` : "—");
      const operator = page.operators.get(record.id_op);
      td(row, operator ? operator.name : record.id_op ? `#${record.id_op}` : "—");
      td(row, t(`outcome.${record.outcome}`)).dataset.outcome = record.outcome;
      td(row, duration(record.duration_wait), "num");
      td(row, record.outcome === "answered" ? duration(record.duration_comm) : "—", "num");
      return row;
    }),
  );
}
