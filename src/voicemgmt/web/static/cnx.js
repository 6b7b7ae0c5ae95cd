/*! Voice Management — cnx.js: the CRM side of the operator banner (guide §4). No dependency.
 *
 * Include it from the Voice Management server, beside the banner's iframe opened with
 * engine=standard&version=1:
 *
 *   <iframe src="https://vm.example.com/operateurs/index.htm?engine=standard&version=1"></iframe>
 *   <script src="https://vm.example.com/cnx.js"></script>
 *   <script>
 *     crm.set_notif_in(function (call) { openCustomerFile(call.caller_id_num); });
 *     crm.login(token).catch(function (error) { console.error(error.code, error.message); });
 *   </script>
 *
 * It finds the iframe by its address (or by a data-vm-banner attribute, or crm.attach(el)),
 * talks to it with postMessage, and accepts messages only from that iframe's window on the
 * server's origin. Commands (login, login_credential, hide_logout, call, publish) return
 * Promises that resolve with their result or reject with an Error whose `code` says why:
 * not_ready, timeout, invalid_argument, not_logged_in, invalid_token, invalid_credentials,
 * forbidden_origin, invalid_phone_number, not_available, throttled, wrong_role, failed.
 * How long to wait: data-ready-timeout and data-command-timeout on the script tag (ms).
 * Loaded from somewhere else than the server (the npm package's copy, served by the CRM):
 * data-server="https://vm.example.com" names the server.
 *
 * The npm package @voicemgmt/cnx (packages/cnx) is built from this file: its ES module is the
 * part between the cnx-core marks, createCrm(options); its script build is this file as is.
 */
(function () {
  "use strict";

  // <cnx-core> — from here to </cnx-core> is also the npm package's ES module (packages/cnx).
  var PROTOCOL = "vm.cnx";
  var VERSION = 1;
  var BANNER_PATH = "/operateurs/index.htm";
  var DEFAULT_READY_TIMEOUT_MS = 15000;
  var DEFAULT_COMMAND_TIMEOUT_MS = 15000;
  var HELLO_EVERY_MS = 200;
  var STATUSES = ["online", "busy", "break", "offline"];
  var nextCommandId = 1; // shared by every crm object of the page: each answer finds its command

  function CnxError(code, message) {
    var error = new Error(message || code);
    error.name = "CnxError";
    error.code = code;
    return error;
  }

  function serverOrigin(server) {
    var url = null;
    try {
      url = new URL(String(server));
    } catch (e) {
      url = null;
    }
    if (!server || !url || (url.protocol !== "https:" && url.protocol !== "http:")) {
      throw CnxError("invalid_argument", "createCrm needs {server: 'https://vm.example.com'}, the Voice Management server's address");
    }
    return url.origin;
  }

  function positive(value, fallback) {
    var number = Number(value);
    return number > 0 ? number : fallback;
  }

  /**
   * The `crm` object of guide §4, bound to the banner served by options.server. Listens from
   * now on; finds the banner's iframe by its address (or options.banner, data-vm-banner,
   * crm.attach). Options: server, readyTimeout and commandTimeout (ms), banner.
   */
  function createCrm(options) {
    options = options || {};
    var ORIGIN = serverOrigin(options.server);
    var READY_TIMEOUT_MS = positive(options.readyTimeout, DEFAULT_READY_TIMEOUT_MS);
    var COMMAND_TIMEOUT_MS = positive(options.commandTimeout, DEFAULT_COMMAND_TIMEOUT_MS);

    var state = {
      iframe: null,
      ready: false,
      helloTimer: null,
      queue: [], // commands waiting for the handshake
      pending: {}, // id → {resolve, reject, timer}
      callbacks: { auth_invalid: [], in: [], out: [], status: [], end: [], missed: [] },
      subscribers: [],
      status: null, // the operator's last known status message
      calls: {}, // id_call → {kind, data}: live calls, for callbacks registered late
      delivered: {}, // "kind:id_call" → true, per callback registration (exactly once)
      omni: null,
      channelStatus: null,
    };

    // --- the iframe ------------------------------------------------------------------------------

    function isBanner(frame) {
      if (!frame || frame.tagName !== "IFRAME") return false;
      if (frame.hasAttribute("data-vm-banner")) return true;
      try {
        var url = new URL(frame.getAttribute("src") || "", location.href);
        return url.origin === ORIGIN && url.pathname === BANNER_PATH;
      } catch (e) {
        return false;
      }
    }

    function findBanner() {
      var frames = document.getElementsByTagName("iframe");
      for (var i = 0; i < frames.length; i++) if (isBanner(frames[i])) return frames[i];
      return null;
    }

    function attach(frame) {
      if (!frame || frame.tagName !== "IFRAME") {
        throw CnxError("invalid_argument", "crm.attach needs the banner's <iframe> element");
      }
      if (state.iframe === frame) return;
      if (state.iframe) state.iframe.removeEventListener("load", onFrameLoad);
      state.iframe = frame;
      frame.addEventListener("load", onFrameLoad);
      var src = frame.getAttribute("src") || "";
      if (!/[?&]engine=standard\b/.test(src) || !/[?&]version=1\b/.test(src)) {
        console.warn("cnx.js: open the banner with engine=standard&version=1 (guide §4)");
      }
      handshake();
    }

    function onFrameLoad() {
      // The banner (re)loaded: it must say it is ready again before commands flow.
      state.ready = false;
      handshake();
    }

    function watchForBanner() {
      var found = findBanner();
      if (found) return attach(found);
      var observer = new MutationObserver(function () {
        var frame = findBanner();
        if (frame) {
          observer.disconnect();
          attach(frame);
        }
      });
      observer.observe(document.documentElement, { childList: true, subtree: true });
    }

    function post(message) {
      if (!state.iframe || !state.iframe.contentWindow) return false;
      message.protocol = PROTOCOL;
      message.version = VERSION;
      state.iframe.contentWindow.postMessage(message, ORIGIN);
      return true;
    }

    function handshake() {
      clearInterval(state.helloTimer);
      post({ type: "hello" });
      state.helloTimer = setInterval(function () {
        if (state.ready) return clearInterval(state.helloTimer);
        post({ type: "hello" });
      }, HELLO_EVERY_MS);
    }

    // --- messages from the banner ------------------------------------------------------------------

    window.addEventListener("message", function (event) {
      if (!state.iframe || event.source !== state.iframe.contentWindow) return;
      if (event.origin !== ORIGIN) return;
      var message = event.data;
      if (!message || message.protocol !== PROTOCOL || message.version !== VERSION) return;
      if (message.type === "ready") onReady(message);
      else if (message.type === "result") onResult(message);
      else if (message.type === "notify") notify(message.kind, message.data || {});
    });

    function onReady(message) {
      var first = !state.ready;
      state.ready = true;
      clearInterval(state.helloTimer);
      if (!first) return;
      var snapshot = message.state || {};
      if (snapshot.status) notify("status", snapshot.status);
      (snapshot.calls || []).forEach(function (call) {
        notify(call.kind, call.data);
      });
      var waiting = state.queue;
      state.queue = [];
      waiting.forEach(send);
    }

    function onResult(message) {
      var entry = state.pending[message.id];
      if (!entry) return;
      delete state.pending[message.id];
      clearTimeout(entry.timer);
      if (message.ok) entry.resolve(message.value);
      else entry.reject(CnxError((message.error && message.error.code) || "failed", message.error && message.error.message));
    }

    function notify(kind, data) {
      if (kind === "status") {
        state.status = data;
        fire("status", data);
        state.subscribers.slice().forEach(function (fn) {
          safely(fn, data);
        });
        toChannel(data.status);
        return;
      }
      if (kind === "auth_invalid") {
        state.calls = {};
        fire("auth_invalid", data);
        return;
      }
      if (kind === "in" || kind === "out") state.calls[data.id_call] = { kind: kind, data: data };
      if (kind === "end" || kind === "missed") delete state.calls[data.id_call];
      fire(kind, data);
    }

    function fire(kind, data) {
      state.callbacks[kind].forEach(function (entry) {
        var key = kind + ":" + (data.id_call || "");
        if (data.id_call && entry.seen[key]) return; // each call's notice once per callback
        if (data.id_call) entry.seen[key] = true;
        safely(entry.fn, data);
      });
    }

    function safely(fn, data) {
      try {
        fn(data);
      } catch (error) {
        setTimeout(function () {
          throw error; // the CRM's own error, reported as its own, not swallowed
        });
      }
    }

    // --- commands ----------------------------------------------------------------------------------

    function command(method, args) {
      return new Promise(function (resolve, reject) {
        var entry = { id: nextCommandId++, method: method, args: args, resolve: resolve, reject: reject };
        if (state.ready) return send(entry);
        entry.timer = setTimeout(function () {
          state.queue = state.queue.filter(function (queued) {
            return queued !== entry;
          });
          reject(CnxError("not_ready", "the banner did not become ready; is its iframe on the page and opened with engine=standard&version=1?"));
        }, READY_TIMEOUT_MS);
        state.queue.push(entry);
      });
    }

    function send(entry) {
      clearTimeout(entry.timer);
      entry.timer = setTimeout(function () {
        delete state.pending[entry.id];
        entry.reject(CnxError("timeout", "the banner did not answer " + entry.method + " in time"));
      }, COMMAND_TIMEOUT_MS);
      state.pending[entry.id] = entry;
      if (!post({ type: "command", id: entry.id, method: entry.method, args: entry.args })) {
        delete state.pending[entry.id];
        clearTimeout(entry.timer);
        entry.reject(CnxError("not_ready", "the banner's iframe is gone"));
      }
    }

    function rejected(code, message) {
      return Promise.reject(CnxError(code, message));
    }

    function text(value) {
      return typeof value === "string" ? value.trim() : typeof value === "number" && isFinite(value) ? String(value) : "";
    }

    function register(kind, fn) {
      if (fn !== null && typeof fn !== "function") {
        throw CnxError("invalid_argument", "crm.set_notif_" + kind + " needs a function (or null)");
      }
      state.callbacks[kind] = fn ? [{ fn: fn, seen: {} }] : [];
      if (!fn) return;
      // A callback set late still hears what is going on now.
      if (kind === "status" && state.status) fire("status", state.status);
      if (kind === "in" || kind === "out") {
        Object.keys(state.calls).forEach(function (id) {
          if (state.calls[id].kind === kind) fire(kind, state.calls[id].data);
        });
      }
    }

    // --- omnichannel (guide §4.4) --------------------------------------------------------------------

    function toChannel(status) {
      if (!state.omni || !status || status === state.channelStatus) return;
      state.channelStatus = status;
      safely(state.omni.publish, { status: status });
    }

    function fromChannel(message) {
      var status = message && message.status;
      if (STATUSES.indexOf(status) < 0) return;
      state.channelStatus = status;
      if (state.status && state.status.status === status) return; // nothing to do, no echo
      crm.publish({ status: status }).catch(function (error) {
        console.warn("cnx.js: the CRM's channel asked for", status, "and the banner said", error.code);
      });
    }

    // --- the crm object (guide §4, names as written) -------------------------------------------------

    var crm = {
      version: VERSION,
      origin: ORIGIN,
      attach: attach,

      login: function (token) {
        var value = text(token);
        if (!value) return rejected("invalid_argument", "crm.login needs the SSO token (a string)");
        return command("login", [value]);
      },
      login_credential: function (login, password) {
        if (!text(login) || typeof password !== "string" || !password) {
          return rejected("invalid_argument", "crm.login_credential needs a login and a password");
        }
        return command("login_credential", [text(login), password]);
      },
      hide_logout: function () {
        return command("hide_logout", []);
      },
      set_auth_invalid: function (fn) {
        register("auth_invalid", fn);
      },
      set_notif_in: function (fn) {
        register("in", fn);
      },
      set_notif_out: function (fn) {
        register("out", fn);
      },
      set_notif_status: function (fn) {
        register("status", fn);
      },
      set_notif_endCall: function (fn) {
        register("end", fn);
      },
      set_notif_missedCall: function (fn) {
        register("missed", fn);
      },
      call: function (phone, ticket_id) {
        var number = text(phone);
        if (!number) return rejected("invalid_argument", "crm.call needs a phone number");
        var ticket = ticket_id === undefined || ticket_id === null ? null : text(ticket_id);
        if (ticket === "") return rejected("invalid_argument", "ticket_id must be a string or a number");
        return command("call", [number, ticket]);
      },
      set_omnichannel: function (channel) {
        if (state.omni && typeof state.omni.unsubscribe === "function") safely(state.omni.unsubscribe);
        state.omni = null;
        state.channelStatus = null;
        if (channel === null || channel === undefined) return;
        if (typeof channel !== "object" || ["subscribe", "unsubscribe", "publish"].some(function (name) {
          return typeof channel[name] !== "function";
        })) {
          throw CnxError("invalid_argument", "crm.set_omnichannel needs {subscribe, unsubscribe, publish} functions");
        }
        state.omni = channel;
        channel.subscribe(fromChannel);
        if (state.status) toChannel(state.status.status);
      },
      subscribe: function (fn) {
        if (typeof fn !== "function") throw CnxError("invalid_argument", "crm.subscribe needs a function");
        state.subscribers.push(fn);
        if (state.status) safely(fn, state.status);
      },
      unsubscribe: function () {
        state.subscribers = [];
      },
      publish: function (message) {
        var status = message && message.status;
        if (STATUSES.indexOf(status) < 0) {
          return rejected("invalid_argument", "crm.publish needs {status: 'online' | 'busy' | 'break' | 'offline'}");
        }
        return command("publish", [status]);
      },
    };

    if (options.banner) attach(options.banner);
    else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", watchForBanner);
    else watchForBanner();
    return crm;
  }
  // </cnx-core>

  // <script src=".../cnx.js" data-server="https://vm.example.com" data-ready-timeout="15000"
  //         data-command-timeout="15000">: the server is where the script came from unless named.
  var script = document.currentScript;
  function attribute(name) {
    return script ? script.getAttribute(name) : null;
  }
  window.crm = createCrm({
    server: attribute("data-server") || (script && script.src ? script.src : location.href),
    readyTimeout: attribute("data-ready-timeout"),
    commandTimeout: attribute("data-command-timeout"),
  });
})();
