// English and French, chosen by ?lang= or else by the browser's languages.

const MESSAGES = {
  en: {
    "app.title": "Voice Management — operator",
    "app.loading": "Connecting…",
    "status.label": "My status",
    "status.online": "Available",
    "status.busy": "Busy",
    "status.break": "On break",
    "status.offline": "Offline",
    "activity.ringing": "Ringing",
    "activity.in_call": "In a call",
    "activity.wrap_up": "Wrap-up",
    "conn.connecting": "Connecting",
    "conn.live": "Live",
    "conn.reconnecting": "Reconnecting…",
    "conn.offline": "No connection",
    "sound.on": "Ring sound on (click to mute)",
    "sound.off": "Ring sound off (click to unmute)",
    "logout": "Log out",
    "login.title": "Log in",
    "login.email": "Email",
    "login.password": "Password",
    "login.submit": "Log in",
    "login.failed": "Wrong email or password.",
    "login.throttled": "Too many attempts; try again in {seconds} s.",
    "out.logged_out": "You are logged out.",
    "out.invalid": "This session is no longer valid: it expired or was closed.",
    "out.not_allowed": "This page may not embed the banner of your account.",
    "out.wrong_role": "This is a supervisor's session: open the supervisor page instead.",
    "tabs.calls": "Calls",
    "tabs.dial": "Dial",
    "tabs.recent": "Recent",
    "tabs.missed": "Missed",
    "calls.none": "No call right now.",
    "call.incoming": "Incoming call",
    "call.withheld": "Withheld number",
    "call.transferred_to_me": "Transferred call",
    "call.connected": "In a call",
    "call.held": "On hold",
    "call.dialing": "Calling…",
    "call.dialing_me": "Your line is ringing…",
    "call.outgoing": "Outgoing call",
    "call.called": "Number called",
    "call.group": "Group",
    "call.wait": "Waited",
    "call.ticket": "Ticket",
    "call.answer": "Answer",
    "call.decline": "Decline",
    "call.hold": "Hold",
    "call.unhold": "Resume",
    "call.transfer": "Transfer",
    "call.hangup": "Hang up",
    "call.open_file": "Open the customer file",
    "transfer.to": "Transfer to",
    "transfer.operators": "Operators",
    "transfer.groups": "Groups",
    "transfer.go": "Transfer",
    "transfer.cancel": "Cancel",
    "wrapup.left": "Wrap-up: {time} left",
    "dial.number": "Number to call",
    "dial.call": "Call",
    "dial.clear": "Clear",
    "dial.invalid": "This number cannot be dialled: {reason}",
    "dial.empty": "Type a number first.",
    "list.none": "Nothing here.",
    "list.call_back": "Call back",
    "list.in": "Incoming",
    "list.out": "Outgoing",
    "outcome.answered": "Answered",
    "outcome.abandoned": "Caller hung up",
    "outcome.missed": "Missed",
    "outcome.overflowed": "Overflowed",
    "outcome.failed": "Failed",
    "error.generic": "Something went wrong: {reason}",
    "error.offline": "You are offline: set yourself available or busy to call.",
    "error.popup_blocked": "The browser blocked the customer file window; use the link.",
  },
  fr: {
    "app.title": "Voice Management — opérateur",
    "app.loading": "Connexion…",
    "status.label": "Mon statut",
    "status.online": "Disponible",
    "status.busy": "Occupé",
    "status.break": "En pause",
    "status.offline": "Déconnecté",
    "activity.ringing": "Sonnerie",
    "activity.in_call": "En communication",
    "activity.wrap_up": "Post-appel",
    "conn.connecting": "Connexion",
    "conn.live": "En direct",
    "conn.reconnecting": "Reconnexion…",
    "conn.offline": "Pas de connexion",
    "sound.on": "Sonnerie activée (cliquer pour couper)",
    "sound.off": "Sonnerie coupée (cliquer pour activer)",
    "logout": "Se déconnecter",
    "login.title": "Connexion",
    "login.email": "E-mail",
    "login.password": "Mot de passe",
    "login.submit": "Se connecter",
    "login.failed": "E-mail ou mot de passe incorrect.",
    "login.throttled": "Trop de tentatives ; réessayez dans {seconds} s.",
    "out.logged_out": "Vous êtes déconnecté.",
    "out.invalid": "Cette session n'est plus valide : elle a expiré ou a été fermée.",
    "out.not_allowed": "Cette page n'a pas le droit d'intégrer le bandeau de votre compte.",
    "out.wrong_role": "C'est une session de superviseur : ouvrez plutôt la page de supervision.",
    "tabs.calls": "Appels",
    "tabs.dial": "Composer",
    "tabs.recent": "Récents",
    "tabs.missed": "Manqués",
    "calls.none": "Aucun appel en ce moment.",
    "call.incoming": "Appel entrant",
    "call.withheld": "Numéro masqué",
    "call.transferred_to_me": "Appel transféré",
    "call.connected": "En communication",
    "call.held": "En attente",
    "call.dialing": "Appel en cours…",
    "call.dialing_me": "Votre ligne sonne…",
    "call.outgoing": "Appel sortant",
    "call.called": "Numéro appelé",
    "call.group": "Groupe",
    "call.wait": "Attente",
    "call.ticket": "Ticket",
    "call.answer": "Décrocher",
    "call.decline": "Refuser",
    "call.hold": "Attente",
    "call.unhold": "Reprendre",
    "call.transfer": "Transférer",
    "call.hangup": "Raccrocher",
    "call.open_file": "Ouvrir la fiche client",
    "transfer.to": "Transférer à",
    "transfer.operators": "Opérateurs",
    "transfer.groups": "Groupes",
    "transfer.go": "Transférer",
    "transfer.cancel": "Annuler",
    "wrapup.left": "Post-appel : encore {time}",
    "dial.number": "Numéro à appeler",
    "dial.call": "Appeler",
    "dial.clear": "Effacer",
    "dial.invalid": "Ce numéro ne peut pas être composé : {reason}",
    "dial.empty": "Saisissez d'abord un numéro.",
    "list.none": "Rien pour l'instant.",
    "list.call_back": "Rappeler",
    "list.in": "Entrant",
    "list.out": "Sortant",
    "outcome.answered": "Répondu",
    "outcome.abandoned": "Raccroché par l'appelant",
    "outcome.missed": "Manqué",
    "outcome.overflowed": "Débordé",
    "outcome.failed": "Échec",
    "error.generic": "Une erreur s'est produite : {reason}",
    "error.offline": "Vous êtes déconnecté : passez-vous disponible ou occupé pour appeler.",
    "error.popup_blocked": "Le navigateur a bloqué la fenêtre de la fiche client ; utilisez le lien.",
  },
};

function pickLanguage() {
  const asked = new URLSearchParams(location.search).get("lang");
  const wanted = asked ? [asked] : navigator.languages || [navigator.language || "en"];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (base in MESSAGES) return base;
  }
  return "en";
}

export const lang = pickLanguage();
const table = MESSAGES[lang];

/** Add a page's own messages, `{ en: {...}, fr: {...} }`, to the shared tables. */
export function define(messages) {
  for (const [code, entries] of Object.entries(messages)) {
    MESSAGES[code] = Object.assign(MESSAGES[code] || {}, entries);
  }
}

/** The message `key` in the page's language, with `{name}` placeholders filled in. */
export function t(key, params = {}) {
  const text = table[key] ?? MESSAGES.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : ""));
}

/** Fill every [data-i18n] (text) and [data-i18n-title] / [data-i18n-placeholder] under root. */
export function translate(root = document) {
  document.documentElement.lang = lang;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  }
  for (const el of root.querySelectorAll("[data-i18n-label]")) el.label = t(el.dataset.i18nLabel);
  for (const el of root.querySelectorAll("[data-i18n-placeholder]")) {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  }
}
