// A CRM page as an integrator would bundle it: cnx.js imported from npm, not loaded from the
// server. ?vm=<server>&token=<SSO token> stand for what the CRM's own server would know.
import { createCrm } from "@voicemgmt/cnx";

const params = new URLSearchParams(location.search);
const server = params.get("vm");
const iframe = document.createElement("iframe");
iframe.width = "360";
iframe.height = "640";
iframe.src = `${server}/operateurs/index.htm?engine=standard&version=1&sound=off`;
// ?shadow: the banner lives in a web component's shadow root, out of cnx's sight: given to it.
const inShadow = params.has("shadow");
const crm = createCrm(inShadow ? { server, banner: iframe } : { server });
window.vm = crm; // for the test to look at
window.seen = [];

function show(id, text) {
  document.getElementById(id).textContent = text;
}

crm.set_notif_in((call) => {
  window.seen.push({ kind: "in", data: call });
  show("customer", call.caller_id_num);
});
crm.set_notif_status((status) => {
  window.seen.push({ kind: "status", data: status });
  show("status", status.status);
});
crm.set_notif_endCall((call) => window.seen.push({ kind: "end", data: call }));

// The iframe is put on the page after createCrm: cnx finds it by its address (or was handed it).
const host = document.getElementById("banner");
(inShadow ? host.attachShadow({ mode: "open" }) : host).append(iframe);

crm
  .login(params.get("token"))
  .then(({ id_op }) => {
    show("operator", String(id_op));
    return crm.publish({ status: "online" });
  })
  .catch((error) => show("status", `error: ${error.code}`));
