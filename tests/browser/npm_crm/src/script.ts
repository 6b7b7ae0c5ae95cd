// The <script> build's global `crm`, typed by @voicemgmt/cnx/global.
/// <reference types="@voicemgmt/cnx/global" />

window.crm.set_notif_missedCall((call) => console.log(call.caller_id_num, call.wait));
const origin: string = crm.origin;
console.log(origin);
export {};
