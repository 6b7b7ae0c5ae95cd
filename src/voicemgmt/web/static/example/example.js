// An example CRM using cnx.js (guide §4). Served by Voice Management at /example/index.htm,
// and it works from any other origin too (copy this folder, open index.html?vm=<server>):
//
//   ?vm=https://vm.example.com   the Voice Management server (default: this page's origin)
//   ?token_session=<token>       log the banner in with crm.login (else a crm.login_credential form)
//   ?action=in&caller_id_num=…   the guide's screen-pop (§3): show that customer's file alone
//
// The page's origin must be one of the account's allowed origins.

(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var VM = (params.get("vm") || location.origin).replace(/\/+$/, "");

  // The CRM's own data: what a real CRM would read from its database.
  var CUSTOMERS = [
    { name: "Jeanne Martin", phone: "33612345678", note: "Order 1042 shipped on Monday." },
    { name: "Paul Bernard", phone: "33611223344", note: "Asked for a call back about invoice F-2231." },
    { name: "Chloé Petit", phone: "33699887766", note: "VIP: subscription renewed in March." },
    { name: "Acme Inc. (US)", phone: "14155550123", note: "Key account, English speaking." },
  ];

  function $(id) {
    return document.getElementById(id);
  }

  function customerOf(phone) {
    return CUSTOMERS.find(function (c) { return c.phone === phone; }) || null;
  }

  // --- a customer file ----------------------------------------------------------------------------

  function showFile(phone, call) {
    var customer = customerOf(phone);
    $("file").hidden = false;
    $("file-name").textContent = customer ? customer.name : "Unknown caller";
    $("file-number").textContent = phone || "(no number)";
    $("file-note").textContent = customer ? customer.note : "No file yet for this number.";
    var list = $("file-call");
    list.replaceChildren();
    Object.keys(call || {}).forEach(function (key) {
      var dt = document.createElement("dt");
      dt.textContent = key;
      var dd = document.createElement("dd");
      dd.textContent = String(call[key]);
      dd.dataset.field = key;
      list.append(dt, dd);
    });
    document.querySelectorAll(".customers li").forEach(function (item) {
      item.setAttribute("aria-current", String(item.dataset.phone === phone));
    });
    $("file").dataset.phone = phone || "";
  }

  function listCustomers() {
    CUSTOMERS.forEach(function (customer, index) {
      var item = document.createElement("li");
      item.dataset.phone = customer.phone;
      var name = document.createElement("span");
      name.textContent = customer.name;
      var link = document.createElement("a");
      link.href = "#";
      link.textContent = "+" + customer.phone;
      link.className = "call-link";
      link.title = "Call (crm.call with ticket T-" + (1001 + index) + ")";
      link.addEventListener("click", function (event) {
        event.preventDefault();
        log("crm.call", { phone: customer.phone, ticket_id: "T-" + (1001 + index) });
        window.crm.call(customer.phone, "T-" + (1001 + index)).then(
          function (result) { log("call →", result); },
          function (error) { log("call ✗", { code: error.code, message: error.message }); },
        );
      });
      item.append(name, link);
      $("customers").append(item);
    });
  }

  // --- the log of every callback ------------------------------------------------------------------

  function log(what, data) {
    var item = document.createElement("li");
    item.dataset.kind = what;
    item.textContent = new Date().toLocaleTimeString() + "  " + what + "  " + JSON.stringify(data);
    $("log").prepend(item);
  }

  // --- the screen-pop window (guide §3) -------------------------------------------------------------

  if (params.get("action") === "in") {
    document.body.classList.add("file-only");
    document.addEventListener("DOMContentLoaded", function () {
      var call = {};
      params.forEach(function (value, key) { call[key] = value; });
      listCustomers();
      showFile(params.get("caller_id_num"), call);
    });
    return;
  }

  // --- the page with the banner (guide §4) ------------------------------------------------------------

  function wire(crm) {
    crm.set_auth_invalid(function () {
      log("set_auth_invalid", {});
      $("login-form").hidden = false;
    });
    crm.set_notif_in(function (call) {
      log("set_notif_in", call);
      showFile(call.caller_id_num, call);
    });
    crm.set_notif_out(function (call) {
      log("set_notif_out", call);
      showFile(call.caller_id_num, call);
    });
    crm.set_notif_status(function (status) {
      log("set_notif_status", status);
      $("status").textContent = status.status;
    });
    crm.set_notif_endCall(function (call) {
      log("set_notif_endCall", call);
    });
    crm.set_notif_missedCall(function (call) {
      log("set_notif_missedCall", call);
    });

    document.querySelectorAll("[data-status]").forEach(function (button) {
      button.addEventListener("click", function () {
        crm.publish({ status: button.dataset.status }).then(
          function (result) { log("publish →", result); },
          function (error) { log("publish ✗", { code: error.code, message: error.message }); },
        );
      });
    });
    $("dial-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var ticket = $("ticket").value.trim() || undefined;
      crm.call($("dial").value, ticket).then(
        function (result) { log("call →", result); },
        function (error) { log("call ✗", { code: error.code, message: error.message }); },
      );
    });
    $("login-form").addEventListener("submit", function (event) {
      event.preventDefault();
      crm.login_credential($("login").value, $("password").value).then(
        function (result) {
          log("login_credential →", result);
          $("login-form").hidden = true;
        },
        function (error) { log("login_credential ✗", { code: error.code, message: error.message }); },
      );
    });

    // A stand-in for the CRM's own chat channel, whose status follows the phone's and back.
    var channel = {
      status: null,
      listener: null,
      subscribe: function (fn) { channel.listener = fn; },
      unsubscribe: function () { channel.listener = null; },
      publish: function (message) {
        channel.status = message.status;
        $("channel").textContent = message.status;
        log("channel ← publish", message);
      },
      set: function (status) { // the chat side changes on its own
        channel.status = status;
        $("channel").textContent = status;
        if (channel.listener) channel.listener({ status: status });
      },
    };
    window.exampleChannel = channel;
    $("omni").addEventListener("change", function (event) {
      if (event.target.checked) crm.set_omnichannel(channel);
      else {
        crm.set_omnichannel(null);
        $("channel").textContent = "off";
      }
    });

    var token = params.get("token_session");
    if (token) {
      crm.hide_logout();
      crm.login(token).then(
        function (result) { log("login →", result); },
        function (error) {
          log("login ✗", { code: error.code, message: error.message });
          $("login-form").hidden = false;
        },
      );
    } else {
      $("login-form").hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    listCustomers();
    var frame = $("vm-banner");
    var sound = params.get("sound") === "off" ? "&sound=off" : "";
    frame.src = VM + "/operateurs/index.htm?engine=standard&version=1" + sound;
    var script = document.createElement("script");
    script.src = VM + "/cnx.js";
    script.onload = function () { wire(window.crm); };
    script.onerror = function () { log("cnx.js could not be loaded from " + VM, {}); };
    document.head.append(script);
  });
})();
