// accel-events: print the accel daemon's RAS events, with accelnl's TypeScript client.
//
// connectAccel() resolves the family through the daemon's nlctrl on NETLINK_USERSOCK (ACCEL_NL_PORT,
// default 0x41434345). subscribe() joins the multicast group when it may (root), and uses the
// subscribe op otherwise; either way it detects sequence gaps and receive overruns and reads the
// missed events back from the device's RAS log, marked `recovered`, in order, without duplicates.
//
// In a project with accelnl installed (see README.md there):
//   npx tsc --module nodenext --target es2022 --strict accel-events.ts && node accel-events.js [COUNT]
// From a clone of the repository, on its sources:
//   npx esbuild --bundle --platform=node docs/examples/accel-events.ts --alias:accelnl=./index.ts \
//     --outfile=/tmp/accel-events.js --external:netlink && node /tmp/accel-events.js [COUNT]
import { connectAccel } from 'accelnl';

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 0);
  const c = await connectAccel();
  let seen = 0;
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => { finish = resolve; });
  const sub = await c.subscribe(['ras'], (e) => {
    if (e.cmd !== 'ras-event-ntf') return;
    for (const ev of e.attrs.event ?? []) {
      console.log(`event dev=${e.attrs.devIndex} seq=${ev.seq} kind=${ev.kind} block=${ev.block} severity=${ev.severity} ` +
        `name=${ev.errorName ?? ''} address=0x${(ev.address ?? 0).toString(16)}${e.recovered ? ' recovered' : ''}`);
      if (count && ++seen >= count) finish();
    }
  });
  console.log(`subscribed: family accel id ${c.family.id}, group ras id ${c.family.groups.get('ras')}, ${sub.mode}`);
  process.once('SIGINT', finish);
  await done;
  await sub.close();
  c.close();
}

main().catch((e: Error) => {
  console.error(`accel-events: ${e.message}`);
  process.exitCode = 1;
});
