// Type-checked by `npm run typecheck` (tsc): the package's types as a TypeScript CRM uses them.
import { createCrm, type VmCrm, type VmError, type VmIncomingCall, type VmStatusMessage } from "@voicemgmt/cnx";

const crm: VmCrm = createCrm({ server: "https://vm.example.com", readyTimeout: 5000 });

crm.set_notif_in((call: VmIncomingCall) => {
  const caller: string = call.caller_id_num;
  const group: number | null = call.id_groupe;
  console.log(caller, group, call.order_number);
});
crm.set_notif_status((status: VmStatusMessage) => console.log(status.status, status.activity));
crm.set_notif_endCall(null);

async function start(token: string): Promise<number> {
  try {
    const { id_op } = await crm.login(token);
    await crm.publish({ status: "online" });
    const { id_call } = await crm.call("33618220000", 42);
    console.log(id_call);
    return id_op;
  } catch (error) {
    console.error((error as VmError).code);
    return 0;
  }
}
void start("token");

// @ts-expect-error: a status is one of online, busy, break, offline
void crm.publish({ status: "away" });
// @ts-expect-error: the server is required
createCrm({});
// @ts-expect-error: the guide's names, not others
crm.set_notif_end(() => undefined);
