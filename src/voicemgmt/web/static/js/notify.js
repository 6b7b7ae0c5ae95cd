// What the banner tells cnx.js (guide §4): the payloads of its notifications (set_notif_in,
// set_notif_out, set_notif_endCall, missed calls, status) and the state a CRM page learns
// when it connects. Pure functions of the banner's state; the bridge (cnx-bridge.js) sends them.

export function statusPayload(banner) {
  return {
    status: banner.status.status,
    presence: banner.status.presence,
    activity: banner.status.activity,
    id_op: banner.me ? banner.me.id : null,
  };
}

/** What a CRM page learns when cnx.js connects: the status and the calls going on. */
export function cnxState(banner) {
  if (!banner.me) return { logged_in: false };
  const calls = [...banner.calls.values()].map((call) => ({
    kind: call.direction,
    data: callPayload(banner, call),
  }));
  return { logged_in: true, id_op: banner.me.id, status: statusPayload(banner), calls };
}

/** set_notif_in or set_notif_out, as the call's direction says. */
export function callPayload(banner, call) {
  return call.direction === "in" ? inPayload(banner, call) : outPayload(banner, call);
}

export function inPayload(banner, call) {
  return {
    id_session: banner.token,
    e164_in: call.called,
    id_call: call.id,
    caller_id_num: call.number,
    id_op: banner.me.id,
    id_groupe: call.group,
    wait: Math.floor(call.wait0),
    ...call.variables,
  };
}

/** set_notif_out: as set_notif_in, `caller_id_num` is the customer's number, and `e164_out`
 * the account's number the call goes out on (its caller id). */
export function outPayload(banner, call) {
  return {
    id_session: banner.token,
    e164_out: call.caller,
    id_call: call.id,
    caller_id_num: call.number,
    id_op: banner.me.id,
    id_groupe: call.group,
    ticket_id: call.ticket,
  };
}

/** set_notif_endCall: the call's record, in the guide's words, with its durations. As in
 * set_notif_in and set_notif_out, caller_id_num is the customer's number. (A record of an
 * outgoing call names the customer service_number, and the line it went out on
 * caller_number.) */
export function endPayload(banner, record) {
  const inbound = record.direction === "in";
  return {
    id_session: banner.token,
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
export function transferPayload(banner, call, data, at) {
  const talk = call.answeredAt ? (at - call.answeredAt) / 1000 : 0;
  return {
    id_session: banner.token,
    id_call: call.id,
    direction: call.direction,
    [call.direction === "in" ? "e164_in" : "e164_out"]: call.direction === "in" ? call.called : call.caller,
    caller_id_num: call.number,
    id_op: banner.me.id,
    id_groupe: call.group,
    outcome: "transferred",
    ended_by: "operator",
    disconnect_reason: data.to_op ? `transferred_to_operator_${data.to_op}` : `transferred_to_group_${data.to_group}`,
    duration_comm: Math.round(talk * 1000) / 1000,
    ticket_id: call.ticket,
    ...call.variables,
  };
}

export function missedPayload(banner, record) {
  return {
    id_session: banner.token,
    id_call: record.id_call,
    e164_in: record.service_number,
    caller_id_num: record.caller_number,
    id_op: banner.me.id,
    id_groupe: record.id_group,
    wait: Math.floor(record.duration_wait),
    outcome: record.outcome,
    disconnect_reason: record.disconnect_reason,
    date: record.date,
    ...record.variables,
  };
}
