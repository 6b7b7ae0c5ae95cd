// The banner's side of cnx.js (guide §4): on with engine=standard&version=1, inside a frame.
//
// Only the embedding page is listened to (messages whose source is window.parent). Its origin
// was vetted by the browser against frame-ancestors when the banner loaded; once logged in,
// it must also be one of the account's own allowed origins, or commands are refused and no
// notice is sent. Notices go to that origin only.

import { t } from "./i18n.js";

const PROTOCOL = "vm.cnx";
const VERSION = 1;
const STATUSES = ["online", "busy", "break", "offline"];

function failure(code, message) {
  return { code, message };
}

export class CnxBridge {
  static wanted(params) {
    return params.get("engine") === "standard" && params.get("version") === "1" && window.parent !== window;
  }

  constructor(banner) {
    this.banner = banner;
    this.origin = null; // the embedder's origin, once it said hello
    addEventListener("message", (event) => this._receive(event));
    banner.on((kind, data) => this._notice(kind, data));
  }

  _allowed(origin) {
    const account = this.banner.account;
    if (!this.banner.me || !account) return true; // vetted by frame-ancestors; checked at login
    return origin === location.origin || account.allowed_origins.includes(origin);
  }

  _post(message) {
    if (!this.origin) return;
    window.parent.postMessage({ protocol: PROTOCOL, version: VERSION, ...message }, this.origin);
  }

  _receive(event) {
    if (event.source !== window.parent) return;
    const message = event.data;
    if (!message || message.protocol !== PROTOCOL || message.version !== VERSION) return;
    if (!this._allowed(event.origin)) {
      if (message.type === "command") {
        window.parent.postMessage(
          {
            protocol: PROTOCOL,
            version: VERSION,
            type: "result",
            id: message.id,
            ok: false,
            error: failure("forbidden_origin", "this page is not one of the account's allowed CRM origins"),
          },
          event.origin,
        );
      }
      return;
    }
    this.origin = event.origin;
    if (message.type === "hello") this._post({ type: "ready", state: this.banner.cnxState() });
    else if (message.type === "command") {
      // One after the other, in the order sent: a login, then what needs it.
      const run = () => this._command(message);
      this._commands = (this._commands || Promise.resolve()).then(run, run);
    }
  }

  async _command(message) {
    let result;
    try {
      result = { ok: true, value: await this._run(message.method, Array.isArray(message.args) ? message.args : []) };
    } catch (error) {
      result = { ok: false, error: error && error.code ? failure(error.code, error.message) : failure("failed", String(error)) };
    }
    this._post({ type: "result", id: message.id, ...result });
  }

  async _run(method, args) {
    const banner = this.banner;
    const needLogin = () => {
      if (!banner.me) throw failure("not_logged_in", "the banner is not logged in");
    };
    switch (method) {
      case "login": {
        const ok = await banner.login(String(args[0] || ""));
        if (!ok) throw failure(banner.loginFailure || "invalid_token", t("out.invalid"));
        return { id_op: banner.me.id };
      }
      case "login_credential": {
        try {
          await banner.loginWithPassword(String(args[0] || ""), String(args[1] || ""));
        } catch (error) {
          throw error.status === 429
            ? failure("throttled", error.message)
            : failure("invalid_credentials", error.message);
        }
        if (!banner.me) throw failure(banner.loginFailure || "invalid_credentials", "login refused");
        return { id_op: banner.me.id };
      }
      case "hide_logout":
        banner.setHideLogout(true);
        return {};
      case "call": {
        needLogin();
        try {
          const id = await banner.dial(String(args[0] || ""), { ticketId: args[1] ?? null });
          return { id_call: id };
        } catch (error) {
          throw failure(error.code === "invalid_phone_number" || error.status === 400
            ? "invalid_phone_number"
            : error.code === "invalid_call_action" ? "not_available" : "failed", error.message);
        }
      }
      case "publish": {
        needLogin();
        if (!STATUSES.includes(args[0])) throw failure("invalid_argument", "unknown status");
        await banner.setStatus(args[0], { raise: true });
        return { status: args[0] };
      }
      default:
        throw failure("invalid_argument", `unknown method ${String(method).slice(0, 40)}`);
    }
  }

  _notice(kind, data) {
    if (!this.origin || !this._allowed(this.origin)) return;
    if (kind === "login") return;
    this._post({ type: "notify", kind, data });
  }
}
