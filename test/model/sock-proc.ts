// One client process of the model test: it holds netlink sockets and does only what the
// coordinator tells it, one JSON line per command on stdin, and reports every datagram it
// receives (with the kernel-attested sender port and uid) as a JSON line on stdout. All protocol
// knowledge stays in the coordinator; this process exists so that sockets belong to different
// processes and users (it runs as root or, through runuser, as nobody).
//
//   in:  {"id":1,"op":"open","sock":3,"port":1234,"rcvbuf":16384}   -> {"ev":"done","id":1,"r":1234}
//        {"id":2,"op":"send","sock":3,"to":N,"hex":"..."}            -> {"ev":"done","id":2,"r":0}
//        {"id":3,"op":"pause"|"resume"|"close","sock":3}
//        {"id":4,"op":"join"|"leave","sock":3,"group":2}             -> r = 0 or -errno
//        {"id":5,"op":"sync","sock":0}: answered after what the sockets had queued is reported
//   out: {"ev":"recv","sock":3,"from":N,"uid":0,"groups":0,"hex":"..."}, {"ev":"overrun","sock":3}
import * as readline from 'readline';
import { loadNative, type NativeHandle } from '../../genl/native/load';

const nat = loadNative().native;
if (!nat) { process.stderr.write(`sock-proc: ${loadNative().error}\n`); process.exit(1); }
const STRIDE = nat.constants.META_STRIDE;
const SLOT = 65536, SLOTS = 16;
const SOL_SOCKET = 1, SO_RCVBUF = 8, SO_RCVBUFFORCE = 33, SOL_NETLINK = 270, ADD = 1, DROP = 2;
const EAGAIN = 11;

interface Sock { h: NativeHandle; buf: Buffer; meta: Int32Array; reading: boolean }
const socks = new Map<number, Sock>();
const out = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n'); };

function startReading(id: number, s: Sock): void {
  nat!.startRecv(s.h, s.buf, SLOT, s.meta, (count, overrun) => {
    if (overrun) out({ ev: 'overrun', sock: id });
    for (let i = 0; i < count; i++) {
      const m = (f: number) => s.meta[i * STRIDE + f];
      out({ ev: 'recv', sock: id, from: m(2) >>> 0, groups: m(3) >>> 0, uid: m(4), hex: s.buf.toString('hex', m(0), m(0) + m(1)) });
    }
  });
  s.reading = true;
}

/** A send that meets a full receive buffer at the daemon is retried for up to 2 s (as genl/client does). */
async function send(s: Sock, to: number, b: Buffer): Promise<number> {
  const until = Date.now() + 2000;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    const r = nat!.send(s.h, b, 0, b.length, to >>> 0, 0);
    if (r !== -EAGAIN || Date.now() > until) return r;
    await new Promise((res) => setTimeout(res, delay));
  }
}

async function run(c: { id: number; op: string; sock: number; port?: number; rcvbuf?: number; to?: number; hex?: string; group?: number }): Promise<number> {
  const s = socks.get(c.sock);
  switch (c.op) {
    case 'open': {
      let h: NativeHandle;
      try { h = nat!.open(2, c.port ?? 0, 0, 1); } catch (e) { return (e as { errno?: number }).errno ?? -1; }
      if (c.rcvbuf && nat!.setInt(h, SOL_SOCKET, SO_RCVBUFFORCE, c.rcvbuf) !== 0) nat!.setInt(h, SOL_SOCKET, SO_RCVBUF, c.rcvbuf);
      const n: Sock = { h, buf: Buffer.allocUnsafeSlow(SLOT * SLOTS), meta: new Int32Array(SLOTS * STRIDE), reading: false };
      socks.set(c.sock, n);
      startReading(c.sock, n);
      return nat!.localPort(h) >>> 0;
    }
    case 'send': return s ? send(s, c.to!, Buffer.from(c.hex!, 'hex')) : -9;
    case 'pause': if (s?.reading) { nat!.stopRecv(s.h); s.reading = false; } return 0;
    case 'resume': if (s && !s.reading) startReading(c.sock, s); return 0;
    case 'join': return s ? nat!.setInt(s.h, SOL_NETLINK, ADD, c.group!) : -9;
    case 'leave': return s ? nat!.setInt(s.h, SOL_NETLINK, DROP, c.group!) : -9;
    case 'close': if (s) { nat!.close(s.h); socks.delete(c.sock); } return 0;
    // A turn of the event loop: whatever the sockets had queued is reported before this answer.
    case 'sync': await new Promise((res) => setImmediate(res)); return 0;
    default: return -22;
  }
}

// Commands run in order (a send must not overtake the open before it).
let chain = Promise.resolve();
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  chain = chain.then(async () => out({ ev: 'done', id: c.id, r: await run(c) }));
}).on('close', () => { chain.then(() => process.exit(0)); });
out({ ev: 'ready', uid: process.getuid?.() ?? -1 });
