// Request rate over real sockets: one client code path sends CTRL_CMD_GETFAMILY("nlctrl") with
// NLM_F_ACK to the kernel's nlctrl (NETLINK_GENERIC, port 0) and to our daemon's nlctrl
// (NETLINK_USERSOCK), sequentially and pipelined (32 in flight), and counts completed requests.
import * as A from '../attrs';
import { CTRL_ATTR, CTRL_CMD, GENL_ID_CTRL, NETLINK_GENERIC, NETLINK_USERSOCK, NLMSG, genlStart, msgEnd, openSocket } from '../genl';
import { startChild } from './_daemon';
import { fmt, quick, smoke, report, table } from './_lib';

async function measure(protocol: number, peer: number, inflight: number, ms: number): Promise<number> {
  const w = A.newWriter(64);
  const at = genlStart(w, GENL_ID_CTRL, 0x05, 0, 0, CTRL_CMD.GETFAMILY, 1);
  A.putString(w, CTRL_ATTR.FAMILY_NAME, 'nlctrl');
  msgEnd(w, at);
  const req = A.bytes(w);
  const dv = new DataView(req.buffer);
  let seq = 1;
  let done = 0;
  let outstanding = 0;
  let stop = false;
  let finish: () => void = () => {};
  const send = () => {
    while (!stop && outstanding < inflight) {
      dv.setUint32(8, seq++, true);
      if (sock.send(req, peer) === 0) outstanding++;
      else break;
    }
  };
  const sock = openSocket({
    protocol, rcvbuf: 4 << 20, backend: 'native',
    onBatch: (b) => {
      for (let i = 0; i < b.count; i++) {
        const d = b.data(i);
        const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
        let off = 0;
        while (off + 16 <= d.length) {
          const len = v.getUint32(off, true);
          if (len < 16) break;
          if (v.getUint16(off + 4, true) === NLMSG.ERROR) { done++; outstanding--; }
          off += (len + 3) & ~3;
        }
      }
      if (stop) { if (outstanding <= 0) finish(); return; }
      send();
    },
  });
  try {
    send();
    await new Promise((r) => setTimeout(r, ms / 4)); // warm up
    const d0 = done;
    const t0 = process.hrtime.bigint();
    await new Promise((r) => setTimeout(r, ms));
    const n = done - d0;
    const el = Number(process.hrtime.bigint() - t0) / 1e9;
    stop = true;
    await new Promise<void>((r) => { finish = r; setTimeout(r, 500); if (outstanding <= 0) r(); });
    return n / el;
  } finally {
    sock.close();
  }
}

async function main(): Promise<void> {
  const port = 0x41450000 + (process.pid & 0xffff);
  const child = await startChild(port);
  const ms = smoke ? 60 : quick ? 300 : 2000;
  const rows = [];
  const data: Record<string, number> = {};
  try {
    for (const inflight of [1, 32]) {
      const kernel = await measure(NETLINK_GENERIC, 0, inflight, ms);
      const ours = await measure(NETLINK_USERSOCK, port, inflight, ms);
      data[`kernel_${inflight}`] = kernel;
      data[`ours_${inflight}`] = ours;
      rows.push({ mode: inflight === 1 ? 'sequential' : `pipelined (${inflight})`, 'kernel nlctrl req/s': fmt(kernel),
        'accelnl nlctrl req/s': fmt(ours), 'ours/kernel': fmt(ours / kernel, 2) });
    }
  } finally {
    await child.stop();
  }
  table(`Request rate, GETFAMILY + ACK, one client process${quick ? ' (quick)' : ''}`, rows);
  report('rate', data);
}

main().catch((e) => { console.error(e); process.exit(1); });
