// Voice Management — cnx.js (guide §4): TypeScript declarations of the global `crm`.
// Served beside the script: https://<your server>/cnx.d.ts
// The npm package @voicemgmt/cnx (packages/cnx) exports the types between the cnx-types marks.

export {};

declare global {
  // <cnx-types>
  /** The operator's four statuses (guide §4.4). */
  type VmStatus = "online" | "busy" | "break" | "offline";

  /** Why a command's Promise was rejected: `error.code`. */
  type VmErrorCode =
    | "not_ready" // the banner never said it was ready (is its iframe opened with engine=standard&version=1?)
    | "timeout" // the banner did not answer in time
    | "invalid_argument" // a method was given something it cannot use
    | "not_logged_in" // the banner has no session
    | "invalid_token" // crm.login: the token is unknown, expired or deleted
    | "invalid_credentials" // crm.login_credential: wrong login or password
    | "throttled" // too many failed logins from this client for now
    | "forbidden_origin" // this page is not one of the account's allowed CRM origins
    | "invalid_phone_number" // crm.call: the number cannot be dialled
    | "not_available" // crm.call: the operator is offline or already in a call
    | "wrong_role" // the token is a supervisor's
    | "failed"; // anything else; the message says what

  interface VmError extends Error {
    name: "CnxError";
    code: VmErrorCode;
  }

  /** set_notif_in (guide §4.2), plus every variable the IVR collected (e.g. order_number). */
  interface VmIncomingCall {
    id_session: string;
    e164_in: string; // the number called, E.164 digits
    id_call: string;
    caller_id_num: string; // the caller, E.164 digits (or what the network gave)
    id_op: number;
    id_groupe: number | null;
    wait: number; // seconds waited before the call was presented
    [ivrVariable: string]: string | number | null;
  }

  /** set_notif_out: `caller_id_num` is the customer's number, `e164_out` the account's. */
  interface VmOutgoingCall {
    id_session: string;
    e164_out: string;
    id_call: string;
    caller_id_num: string;
    id_op: number;
    id_groupe: number | null;
    ticket_id: string | null;
  }

  interface VmStatusMessage {
    status: VmStatus; // what the banner shows (busy while in a call)
    presence: VmStatus; // what was chosen
    activity: "idle" | "ringing" | "in_call" | "wrap_up";
    id_op: number | null;
  }

  /** set_notif_endCall: the call's record; durations in seconds. */
  interface VmEndedCall {
    id_session: string;
    id_call: string;
    direction: "in" | "out";
    e164_in?: string;
    e164_out?: string;
    caller_id_num: string;
    id_op: number | null;
    id_groupe: number | null;
    outcome: "answered" | "abandoned" | "missed" | "overflowed" | "failed" | "transferred";
    ended_by: "caller" | "operator" | "system";
    disconnect_reason: string;
    duration?: number;
    duration_ring?: number;
    duration_svi?: number;
    duration_wait?: number;
    duration_comm: number;
    duration_hold?: number;
    ticket_id: string | null;
    [ivrVariable: string]: string | number | null | undefined;
  }

  interface VmMissedCall {
    id_session: string;
    id_call: string;
    e164_in: string;
    caller_id_num: string;
    id_op: number;
    id_groupe: number | null;
    wait: number;
    outcome: "missed" | "abandoned";
    disconnect_reason: string;
    date: string; // ISO 8601
    [ivrVariable: string]: string | number | null;
  }

  /** The CRM's own channel (chat, …) whose status should follow the phone's, and back. */
  interface VmOmnichannel {
    subscribe(listener: (message: { status: VmStatus }) => void): void;
    unsubscribe(): void;
    publish(message: { status: VmStatus }): void;
  }

  interface VmCrm {
    readonly version: 1;
    /** The Voice Management server this script came from. */
    readonly origin: string;
    /** Use this iframe as the banner (otherwise found by its address). */
    attach(iframe: HTMLIFrameElement): void;

    // 4.1 Authentication
    login(token: string): Promise<{ id_op: number }>;
    login_credential(login: string, password: string): Promise<{ id_op: number }>;
    hide_logout(): Promise<{}>;
    set_auth_invalid(callback: (() => void) | null): void;

    // 4.2 Notifications
    set_notif_in(callback: ((call: VmIncomingCall) => void) | null): void;
    set_notif_out(callback: ((call: VmOutgoingCall) => void) | null): void;
    set_notif_status(callback: ((status: VmStatusMessage) => void) | null): void;
    set_notif_endCall(callback: ((call: VmEndedCall) => void) | null): void;
    set_notif_missedCall(callback: ((call: VmMissedCall) => void) | null): void;

    // 4.3 Other interactions
    call(phone: string | number, ticket_id?: string | number | null): Promise<{ id_call: string }>;

    // 4.4 Omnichannel
    set_omnichannel(channel: VmOmnichannel | null): void;
    subscribe(callback: (status: VmStatusMessage) => void): void;
    unsubscribe(): void;
    publish(message: { status: VmStatus }): Promise<{ status: VmStatus }>;
  }
  // </cnx-types>

  const crm: VmCrm;
  interface Window {
    crm: VmCrm;
  }
}
