// How times, durations and numbers read on a page.

import { lang } from "./i18n.js";

/** 75 → "1:15"; 3725 → "1:02:05". */
export function duration(seconds) {
  const total = Math.max(0, Math.floor(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(lang, { day: "2-digit", month: "2-digit" });

/** An ISO date as a short local time, with the day when it is not today. */
export function when(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return sameDay ? clock.format(date) : `${day.format(date)} ${clock.format(date)}`;
}

/** A number for people; the server's formatting when it sent one, else "+" and the digits. */
export function phone(digits, display) {
  if (display) return display;
  return /^[0-9]{4,15}$/.test(digits || "") ? `+${digits}` : String(digits ?? "");
}
