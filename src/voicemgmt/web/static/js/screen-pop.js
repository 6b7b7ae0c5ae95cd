// The screen-pop (SPEC §3): the CRM's customer file opened, with the guide's parameters, in
// one named window per account, by one tab of the operator (the leader), once per call.

import { t } from "./i18n.js";
import { local } from "./storage.js";

const POPPED_KEY = "vm.popped";
// Screen-pop parameters (guide §3.2); IVR variables never replace them.
const POP_FIELDS = ["id_session", "e164_in", "id_call", "caller_id_num", "action", "id_op", "id_group", "wait"];

export function crmWindowName(account) {
  return `vm_crm_${account.id}`;
}

/** The customer file's URL for a call (the group's CRM URL, else the account's), or null. */
export function crmUrl(banner, call, wait) {
  const group = banner.groups.get(call.group);
  const base = (group && group.crm_url) || banner.account.crm_url;
  if (!base) return null;
  const url = new URL(base);
  const fields = {
    id_session: banner.token,
    e164_in: call.called,
    id_call: call.id,
    caller_id_num: call.number,
    action: "in",
    id_op: banner.me.id,
    id_group: call.group,
    wait: Math.floor(wait),
  };
  for (const name of POP_FIELDS) url.searchParams.set(name, String(fields[name] ?? ""));
  for (const [name, value] of Object.entries(call.variables)) {
    if (!POP_FIELDS.includes(name)) url.searchParams.set(name, String(value));
  }
  return url.toString();
}

/** At the account's moment (`presentation` or `answer`), open the call's customer file. */
export function screenPop(banner, call, moment) {
  if (banner.account.screen_pop !== moment) return;
  const wait = moment === "answer" ? call.waitFinal ?? call.wait0 : call.wait0;
  call.crmUrl = crmUrl(banner, call, wait);
  if (!call.crmUrl || !banner.leader || popped(call.id)) return;
  const opened = window.open(call.crmUrl, crmWindowName(banner.account));
  if (!opened) banner.notice(t("error.popup_blocked"));
}

/** Whether a tab already opened this call's file (and note that this one does). */
function popped(callId) {
  let ids = [];
  try {
    ids = JSON.parse(local.getItem(POPPED_KEY) || "[]");
  } catch {
    ids = [];
  }
  if (ids.includes(callId)) return true;
  local.setItem(POPPED_KEY, JSON.stringify([...ids.slice(-49), callId]));
  return false;
}
