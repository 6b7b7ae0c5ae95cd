// The banner's calls and status as the server says they are: a call of the state snapshot
// (GET /api/v1/me/state), then each event of the account's stream applied to them, with the
// notifications (in, out, end, missed, status) and the screen-pop it causes.

import { callPayload, endPayload, inPayload, missedPayload, outPayload, statusPayload, transferPayload } from "./notify.js";
import { screenPop } from "./screen-pop.js";

export class Call {
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

/** A call of the state snapshot, if it is this operator's (ringing for them, or theirs). */
export function callFromSnapshot(banner, c) {
  const mine = banner.me.id;
  const base = {
    id: c.id_call,
    direction: c.direction,
    group: c.id_group,
    variables: c.variables || {},
    ticket: c.ticket_id,
    startedAt: banner.local(c.started_at),
    answeredAt: c.answered_at ? banner.local(c.answered_at) : null,
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

/** Apply one event frame; true when it may have changed what the banner shows. */
export function applyEvent(banner, frame) {
  const data = frame.data;
  const at = banner.local(frame.at);
  const mine = banner.me.id;
  switch (frame.kind) {
    case "operator.status":
      if (data.id_op === mine) statusChanged(banner, data, at);
      break;
    case "call.offered":
      if (data.id_op === mine) offered(banner, data, at);
      break;
    case "call.offer_withdrawn":
      if (data.id_op === mine) banner.calls.delete(data.id_call);
      break;
    case "call.answered":
      if (data.id_op === mine) answered(banner, data, at);
      break;
    case "call.held":
    case "call.resumed": {
      const call = banner.calls.get(data.id_call);
      if (call && data.id_op === mine) call.phase = frame.kind === "call.held" ? "held" : "connected";
      break;
    }
    case "call.outbound":
      if (data.id_op === mine) outbound(banner, data, at);
      break;
    case "call.transferred":
      if (data.from_op === mine) {
        const call = banner.calls.get(data.id_call);
        if (call) {
          banner.lastGroup = call.group;
          banner.emit("end", transferPayload(banner, call, data, at));
        }
        banner.calls.delete(data.id_call);
      }
      break;
    case "call.ended":
      ended(banner, data.record);
      break;
    default:
      return false;
  }
  return true;
}

/** Tell the listeners the status and the calls going on (after a state snapshot). */
export function announceState(banner) {
  banner.emit("status", statusPayload(banner));
  for (const call of banner.calls.values()) banner.emit(call.direction, callPayload(banner, call));
}

function statusChanged(banner, data, at) {
  const changed = data.status !== banner.status.status;
  banner.status = {
    status: data.status,
    presence: data.presence,
    activity: data.activity,
    since: changed ? at : banner.status.since,
  };
  if (data.activity === "wrap_up") {
    // The wrap-up follows the end of a call (its call.ended or call.transferred, which set
    // lastGroup); a call still shown here is one whose end this banner has not seen.
    const current = [...banner.calls.values()].find((c) => c.phase === "connected" || c.phase === "held");
    const group = banner.groups.get(current ? current.group : banner.lastGroup);
    banner.wrapUpUntil = at + 1000 * (group ? group.wrap_up : 0);
  } else {
    banner.wrapUpUntil = null;
  }
  if (changed) banner.emit("status", statusPayload(banner));
}

function offered(banner, data, at) {
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
    transferred: banner.calls.has(data.id_call),
  });
  banner.calls.set(call.id, call);
  screenPop(banner, call, "presentation");
  banner.emit("in", inPayload(banner, call));
}

function answered(banner, data, at) {
  const call = banner.calls.get(data.id_call);
  if (!call) return;
  if (call.phase === "offered") call.waitFinal = call.waitAt(at);
  call.phase = "connected";
  call.answeredAt = at;
  call.busy = false;
  if (call.direction === "in") screenPop(banner, call, "answer");
}

function outbound(banner, data, at) {
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
  banner.calls.set(call.id, call);
  banner.emit("out", outPayload(banner, call));
  // This banner is the operator's phone: it picks up the line it asked for.
  if (banner.dialing || banner.leader) banner.act(call.id, "answer");
}

function ended(banner, record) {
  const call = banner.calls.get(record.id_call);
  if (call) {
    banner.lastGroup = record.id_group;
    banner.calls.delete(record.id_call);
  }
  const mine = banner.me.id;
  if (record.id_op === mine || record.operators_offered.includes(mine)) {
    banner.lists.refreshSoon();
    if (record.id_op === mine) banner.emit("end", endPayload(banner, record));
    else if (record.outcome === "missed" || record.outcome === "abandoned") {
      banner.emit("missed", missedPayload(banner, record));
    }
  }
}
