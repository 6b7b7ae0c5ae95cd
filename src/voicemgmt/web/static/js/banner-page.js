// The banner's page: which view shows (loading, logged out, main), the connection light, the
// tabs, the status line and wrap-up countdown, and the controls wired to the banner's actions.

import { duration } from "./format.js";
import { t } from "./i18n.js";

const $ = (id) => document.getElementById(id);

export function showView(view) {
  $("app").dataset.view = view;
  $("loading").hidden = view !== "loading";
  $("logged-out").hidden = view !== "out";
  $("main").hidden = view !== "main";
  $("controls").hidden = view !== "main";
  $("status-line").hidden = view !== "main";
  if (view !== "main") $("conn").dataset.state = "idle";
}

export function showConnection(state) {
  $("conn").dataset.state = state;
  $("conn-label").textContent = t(`conn.${state}`);
}

export function selectTab(banner, name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    const selected = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !selected;
  }
  if (name === "missed") banner.lists.markMissedSeen();
}

export function render(banner) {
  if (!banner.me) return;
  $("status").value = banner.status.presence;
  $("status-box").dataset.status = banner.status.status;
  const activity = banner.status.activity;
  $("activity").textContent = activity === "idle" ? t(`status.${banner.status.status}`) : t(`activity.${activity}`);
  banner.cards.render(banner.calls);
  const ringing = [...banner.calls.values()].some((call) => call.phase === "offered");
  if (ringing && banner.leader) banner.ringer.start();
  else banner.ringer.stop();
  const sound = $("sound");
  sound.setAttribute("aria-pressed", String(banner.ringer.enabled));
  sound.title = t(banner.ringer.enabled ? "sound.on" : "sound.off");
  sound.setAttribute("aria-label", sound.title);
  tick(banner);
}

/** Every second: the time in the status, the wrap-up left, the calls' timers. */
export function tick(banner) {
  if (!banner.me) return;
  const now = Date.now();
  $("status-time").textContent = duration((now - banner.status.since) / 1000);
  const wrapup = $("wrapup");
  const left = banner.wrapUpUntil ? (banner.wrapUpUntil - now) / 1000 : 0;
  wrapup.hidden = !(banner.status.activity === "wrap_up" && left > 0);
  if (!wrapup.hidden) wrapup.textContent = t("wrapup.left", { time: duration(Math.ceil(left)) });
  banner.cards.tick();
}

export function bindPage(banner) {
  $("status").addEventListener("change", (event) => banner.setStatus(event.target.value));
  $("logout").addEventListener("click", () => banner.logout());
  $("sound").addEventListener("click", () => {
    banner.ringer.setEnabled(!banner.ringer.enabled);
    banner.render();
  });
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.addEventListener("click", () => selectTab(banner, tab.dataset.tab));
    tab.addEventListener("keydown", (event) => {
      const tabs = [...document.querySelectorAll("[role=tab]")];
      const index = tabs.indexOf(tab);
      const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
      if (!step) return;
      const next = tabs[(index + step + tabs.length) % tabs.length];
      selectTab(banner, next.dataset.tab);
      next.focus();
    });
  }
  $("dial-form").addEventListener("submit", (event) => {
    event.preventDefault();
    banner.call().catch(() => {});
  });
  $("dial-clear").addEventListener("click", () => {
    $("dial-number").value = "";
    $("dial-error").hidden = true;
    $("dial-number").focus();
  });
  for (const key of document.querySelectorAll(".keypad [data-key]")) {
    key.addEventListener("click", () => {
      const input = $("dial-number");
      if (input.value.length < 32) input.value += key.dataset.key;
      input.focus();
    });
  }
  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("login-error");
    error.hidden = true;
    try {
      await banner.loginWithPassword($("login-email").value.trim(), $("login-password").value);
      $("login-password").value = "";
    } catch (failure) {
      error.textContent =
        failure.status === 429
          ? t("login.throttled", { seconds: failure.details.retry_after || 60 })
          : failure.status === 401 || failure.status === 400
            ? t("login.failed")
            : t("error.generic", { reason: failure.message });
      error.hidden = false;
    }
  });
  document.addEventListener("keydown", (event) => {
    if (!event.altKey || !banner.me) return;
    const key = event.key.toLowerCase();
    const calls = [...banner.calls.values()];
    const offered = calls.find((c) => c.phase === "offered");
    const current = calls.find((c) => c.phase !== "offered");
    if (key === "a" && offered) banner.act(offered.id, "answer");
    else if (key === "d" && offered) banner.act(offered.id, "decline");
    else if (key === "h" && current) banner.act(current.id, "hangup");
    else return;
    event.preventDefault();
  });
}
