// genl/clients.ts against scripted socket tables: a port left out of one sock_diag dump (the
// kernel walks its socket hash in passes while others come and go) is not taken for a closed socket.
import { type SocketClient, clientOf, newClientTable, present, staleTable, verified } from '../genl/clients';
import { newCounters } from '../genl/counters';
import { type ServerSocket, SETTLE_MS, datagramKind, flushOutbox, newOutbox, provenRead, pushSpan, raceLine, retryQueues, settleSends } from '../genl/outbox';
import { putRaw } from '../attrs';
import type { NetlinkSocket, SocketTable } from '../genl/sockdiag';

const sock = (port: number, inode: number): NetlinkSocket => ({ port, inode, cookie: BigInt(inode), flags: 0, dstPort: 0, groups: 0 });
const tableOf = (...s: NetlinkSocket[]): SocketTable => new Map(s.map((x) => [x.port, x]));
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

test('a port missing from one dump but there on the second query keeps its client', async () => {
  const answers = [tableOf(sock(7, 100)), tableOf(), tableOf(sock(7, 100))];
  const t = newClientTable(() => answers.shift());
  const c = clientOf(t, 7, 0, 0, 42);
  expect(c.sock?.inode).toBe(100);
  await nextTurn();
  expect(present(t, c)).toBe(true);  // left out once, found again: the same socket
  expect(c.gone).toBe(false);
  expect(t.queries).toBe(3);
});

test('a port missing twice is closed: the client is dropped and a late datagram runs detached', async () => {
  const answers = [tableOf(sock(7, 100)), tableOf(), tableOf()];
  const t = newClientTable(() => answers.shift());
  const c = clientOf(t, 7, 0, 0, 42);
  const freed: number[] = [];
  t.onGone.push((x) => freed.push(x.id));
  await nextTurn();
  const v = verified(t, c, 42);
  expect(freed).toEqual([c.id]);
  expect(v.gone).toBe(true);  // nobody holds the port: nothing is created, nothing answered
  expect(t.stale).toBe(1);
});

test('first seen with its port unbound (twice), a client is marked closed at first sight', () => {
  const answers = [tableOf(), tableOf()];
  const t = newClientTable(() => answers.shift());
  expect(clientOf(t, 9, 0, 0, 1).closedAtFirstSight).toBe(true);
});

// Found by genl-real's intermittent timeout (its counters showed every datagram of a live client
// taken as stale): a datagram read after its socket closed, from a port no client was filed
// under, leaves a record marked closed at first sight; the process's next socket, bound to the
// same port (the kernel gives a process its pid as port again), was matched to that record by
// uid and pid, and all it sent was served detached and answered to nobody.
test('a new socket on the port of one closed at first sight, in the same process, gets a live client', async () => {
  let tab = tableOf();
  const t = newClientTable(() => tab);
  t.holds = (pid, inode) => pid === 42 && inode === 300;
  const late = clientOf(t, 7, 0, 0, 42); // the old socket's CLOSING, read after it closed
  expect(late.closedAtFirstSight).toBe(true);
  await nextTurn();
  tab = tableOf(sock(7, 300)); // the same process's next socket binds port 7
  const next = clientOf(t, 7, 0, 0, 42);
  expect(next.closedAtFirstSight).toBe(false);
  expect(next.gone).toBe(false);
  expect(next.sock?.inode).toBe(300);
  expect(t.byPort.get(7)).toBe(next);
  expect(t.stale).toBe(0);
  await nextTurn();
  expect(clientOf(t, 7, 0, 0, 42)).toBe(next); // and it stays that socket's client
});

test('while its port stays unbound, a record closed at first sight still serves datagrams detached', async () => {
  const t = newClientTable(() => tableOf());
  const first = clientOf(t, 7, 0, 0, 42);
  await nextTurn();
  const again = clientOf(t, 7, 0, 0, 42);
  expect(again.closedAtFirstSight).toBe(true);
  expect(again.sock).toBeUndefined();
  expect(first.closedAtFirstSight).toBe(true);
});

// Model finding M4: a closed socket's datagrams, read after another process bound its port and
// was seen, were filed under the new socket's client (its dumps and answers went to that socket).
describe('a datagram of a closed socket read after the successor was seen (model finding M4)', () => {
  /** Process 42 held the socket with inode 100 on port 7; process 43 now holds inode 200 there. */
  const setup = () => {
    const t = newClientTable(() => tableOf(sock(7, 200)));
    t.holds = (pid, inode) => (pid === 43 && inode === 200) || (pid === 44 && inode === 200);
    const freed: number[] = [];
    t.onGone.push((x) => freed.push(x.id));
    return { t, freed };
  };

  test('same user, other process: served detached, the successor keeps its client', async () => {
    const { t, freed } = setup();
    const next = clientOf(t, 7, 1000, 1000, 43);
    await nextTurn();
    const late = clientOf(t, 7, 1000, 1000, 42);
    expect(late.gone).toBe(true);
    expect(late.id).not.toBe(next.id);
    expect(t.byPort.get(7)).toBe(next);
    expect(next.pid).toBe(43);
    expect(freed).toEqual([]);
    expect(t.stale).toBe(1);
  });

  test('other user: served detached instead of replacing the successor\'s client', async () => {
    const { t, freed } = setup();
    const next = clientOf(t, 7, 0, 0, 43);
    await nextTurn();
    const late = clientOf(t, 7, 65534, 65534, 42);
    expect(late.gone).toBe(true);
    expect(late.uid).toBe(65534);
    expect(t.byPort.get(7)).toBe(next);
    expect(next.gone).toBe(false);
    expect(freed).toEqual([]);
  });

  test('first sight: a sender that does not hold the socket on the port gets no client', () => {
    const { t } = setup();
    const late = clientOf(t, 7, 1000, 1000, 42);
    expect(late.gone).toBe(true);
    expect(t.byPort.has(7)).toBe(false);
  });

  test('another process that shares the socket (a child) is the same client', async () => {
    const { t } = setup();
    const c = clientOf(t, 7, 1000, 1000, 43);
    await nextTurn();
    expect(clientOf(t, 7, 1000, 1000, 44)).toBe(c);
    expect(c.pid).toBe(44);
  });

  test('without /proc (holds cannot tell), the sender on a live socket is taken as sharing it', async () => {
    const { t } = setup();
    t.holds = () => undefined;
    const c = clientOf(t, 7, 1000, 1000, 43);
    await nextTurn();
    expect(clientOf(t, 7, 1000, 1000, 42)).toBe(c);
  });
});

// What a checked send delivered is proven by a later table (genl/outbox.ts, docs/transport.md
// "Raced sends"): a netlink send names a port, so a port that changes hands between the last check
// and the send can pass a datagram to the next socket. It cannot be prevented; every such datagram
// is counted (racedSends) and logged, one line each. Scripted tables play the kernel's.
describe('a port that changed hands during a checked send is reported (raced)', () => {
  const ok = (): ServerSocket => ({ port: 1, sendMany: (_d, _s, count = 1, res) => { res?.fill(0, 0, count); return count; } });
  /** An outbox whose table answers `answers` in turn, one client (port 7, inode 100) made with the first. */
  const setup = (answers: (SocketTable | undefined)[], socket: ServerSocket = ok()) => {
    const t = newClientTable(() => answers.shift());
    const lines: string[] = [];
    const counters = newCounters();
    const wakes: number[] = [];
    const ob = newOutbox({
      clients: t, counters, wake: (at) => wakes.push(at), onStall: () => {},
      opts: { maxBacklog: 8, maxBacklogBytes: 1 << 20, maxBacklogTotal: 1 << 20, stallMs: 30000, batchEvents: true, log: (l) => lines.push(l) },
    });
    ob.socket = socket;
    const c = clientOf(t, 7, 0, 0, 42);
    return { t, ob, c, lines, counters, answers, wakes };
  };
  /** A dump chunk (NLM_F_MULTI, nlmsg_pid 7) to `c`, from a later callback: the flush checks it. */
  const pushChunk = (ob: ReturnType<typeof setup>['ob'], c: SocketClient) => {
    const at = ob.out.len;
    putRaw(ob.out, new Uint8Array([20, 0, 0, 0, 0x10, 0, 2, 0, 1, 0, 0, 0, c.port, 0, 0, 0, 0, 0, 0, 0]));
    pushSpan(ob, at, c, true);
  };

  test('the port has another socket after the send: counted and logged, with the datagram\'s kind', () => {
    // First sight; the check before the send; the table taken to settle it (inode 200 holds port 7 now).
    const { ob, c, lines, counters, t, wakes } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.unproven).toHaveLength(1);
    expect(wakes).toEqual([ob.settleAt]);  // the pump is asked to settle it within SETTLE_MS
    expect(ob.settleAt - Date.now()).toBeLessThanOrEqual(SETTLE_MS);
    settleSends(ob);  // not due yet: nothing read
    expect(t.queries).toBe(2);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(1);
    expect(lines).toEqual(['accelnl: raced send: port 0x00000007 socket inode 100 changed hands during the send ' +
      '(now inode 200); a dump chunk for it may have reached the next socket']);
    expect(t.queries).toBe(3);
    expect(ob.unproven).toHaveLength(0);
  });

  test('the same socket on the port after the send: nothing reported', () => {
    const { ob, c, lines, counters, t } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 100))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(0);
    expect(lines).toEqual([]);
    expect(t.queries).toBe(3);
    expect(ob.unproven).toHaveLength(0);
  });

  test('the next checked flush\'s own check settles the one before: one table per flush, none extra', () => {
    const { ob, c, lines, counters, t, wakes } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    pushChunk(ob, c);
    flushOutbox(ob);  // its check reads inode 200 on port 7: the first chunk is a suspect, the second is not sent
    expect(t.queries).toBe(3);
    expect(c.gone).toBe(true);
    // Reported SETTLE_MS later, when no CLOSING of the socket proved it read it meanwhile.
    expect(counters.racedSends).toBe(0);
    expect(ob.unproven).toMatchObject([{ port: 7, inode: 100, other: 200 }]);
    expect(ob.settleAt).toBeLessThanOrEqual(ob.unproven[0].reportAt);
    expect(Math.min(...wakes)).toBeLessThanOrEqual(ob.unproven[0].reportAt);  // the pump runs by then, and re-arms
    settleSends(ob);  // not due: kept
    expect(counters.racedSends).toBe(0);
    // The pump's settle comes before the suspect's time: kept, and the pump is asked back for it.
    const at = ob.unproven[0].reportAt = Date.now() + 1000;
    ob.settleAt = Date.now();
    settleSends(ob);
    expect(counters.racedSends).toBe(0);
    expect([wakes.at(-1), ob.settleAt]).toEqual([at, at]);
    ob.unproven[0].reportAt = ob.settleAt = Date.now();
    settleSends(ob);
    expect(t.queries).toBe(3);  // reporting a suspect reads no table
    expect(counters.racedSends).toBe(1);
    expect(lines).toHaveLength(1);
    expect(ob.unproven).toHaveLength(0);
  });

  test('a suspect whose socket said, closing, that it read every answer is proven, not reported; events are not', () => {
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))]);
    pushChunk(ob, c);
    // and a unicast event (nlmsg_pid 0), in the same checked flush
    const at = ob.out.len;
    putRaw(ob.out, new Uint8Array([20, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
    pushSpan(ob, at, c, true);
    flushOutbox(ob);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.unproven.map((u) => u.kind)).toEqual(['dump chunk', 'event']);
    provenRead(ob, 7, 999, 0, 42);  // another socket's word proves nothing
    provenRead(ob, 7, 100, 0, 43);  // nor another process's (inodes are public)
    provenRead(ob, 7, 100, 1000, 42);  // nor another user's
    expect(ob.unproven).toHaveLength(2);
    provenRead(ob, 7, 100, 0, 42);
    expect(ob.unproven.map((u) => u.kind)).toEqual(['event']);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(1);
    expect(lines).toEqual(['accelnl: raced send: port 0x00000007 socket inode 100 changed hands during the send ' +
      '(now inode 200); an event for it may have reached the next socket']);
  });

  test('missing from the table after the send but there on the next: the same socket, nothing reported', () => {
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(), tableOf(sock(7, 100))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(0);
    expect(lines).toEqual([]);
  });

  test('missing twice after the send (the socket read it and closed, as a CLI does): counted as unproven, not logged', () => {
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(), tableOf()]);
    pushChunk(ob, c);
    pushChunk(ob, c);
    flushOutbox(ob);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(0);
    expect(counters.unprovenSends).toBe(2);
    expect(lines).toEqual([]);
    expect(ob.unproven).toHaveLength(0);
  });

  test('a flush that checks nothing (replies in their own callback) leaves nothing unproven', () => {
    const { ob, c, lines, t } = setup([tableOf(sock(7, 100))]);
    return nextTurn().then(() => {
      const at = ob.out.len;
      putRaw(ob.out, new Uint8Array([16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]));
      pushSpan(ob, at, c, false);
      flushOutbox(ob);
      settleSends(ob, true);
      expect(t.queries).toBe(1);
      expect(lines).toEqual([]);
    });
  });

  test('sendManyHeld\'s check of the next flush proves the datagrams before it (no table read in JavaScript)', () => {
    let onPort7 = 100;  // what the native check finds on port 7
    const held: ServerSocket = {
      ...ok(),
      sendManyHeld: (_d, spans, count, res, inodes) => {
        let n = 0;
        for (let i = 0; i < count; i++) {
          const fails = inodes[i] !== 0 && spans[i * 4 + 2] === 7 && inodes[i] !== onPort7;
          res[i] = fails ? -116 : 0;
          n += fails ? 0 : 1;
        }
        return n;
      },
    };
    const { ob, c, lines, counters, t } = setup([tableOf(sock(7, 100))], held);
    ob.heldSends = true;
    pushChunk(ob, c);
    flushOutbox(ob);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.unproven).toHaveLength(1);  // the first proven by the second's check; the second waits
    expect(t.queries).toBe(1);
    // The port changes hands before the third flush: its check fails (ESTALE), and the table read
    // for the ESTALE answer (inode 200) shows the second chunk raced.
    onPort7 = 200;
    t.source = () => tableOf(sock(7, 200));
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.unproven).toMatchObject([{ inode: 100, other: 200 }]);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(1);
    expect(lines).toEqual(['accelnl: raced send: port 0x00000007 socket inode 100 changed hands during the send ' +
      '(now inode 200); a dump chunk for it may have reached the next socket']);
    expect(ob.unproven).toHaveLength(0);
  });

  test('a retried queue datagram is unproven after it goes out, and settled like the others', () => {
    let full = true;
    const sometimesFull: ServerSocket = {
      port: 1,
      sendMany: (_d, _s, count = 1, res) => { res!.fill(full ? -11 : 0, 0, count); return full ? 0 : count; },
    };
    // First sight; the flush's check (then EAGAIN: queued); the retry's check; the settling table.
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))], sometimesFull);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.backlog.get(7)?.q).toHaveLength(1);
    expect(ob.unproven).toHaveLength(0);  // not delivered
    full = false;
    ob.backlog.get(7)!.retryAt = 0;
    staleTable(ob.clients);
    retryQueues(ob);
    expect(ob.unproven).toHaveLength(1);
    settleSends(ob, true);
    expect(counters.racedSends).toBe(1);
    expect(lines[0]).toMatch(/^accelnl: raced send: port 0x00000007 socket inode 100 changed hands during the send \(now inode 200\); a dump chunk for it/);
  });
});

test('raceLine names what the datagram was', () => {
  const msg = (type: number, flags: number, pid: number) => {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, 16, true); dv.setUint16(4, type, true); dv.setUint16(6, flags, true); dv.setUint32(12, pid, true);
    return b;
  };
  expect(datagramKind(msg(0x10, 0, 7), 0)).toBe('reply');
  expect(datagramKind(msg(2, 0x100, 7), 0)).toBe('reply');  // an ACK
  expect(datagramKind(msg(0x10, 2, 7), 0)).toBe('dump chunk');
  expect(datagramKind(msg(3, 2, 7), 0)).toBe('dump chunk');  // NLMSG_DONE
  expect(datagramKind(msg(0x10, 0, 0), 0)).toBe('event');
  expect(datagramKind(msg(4, 0, 7), 0)).toBe('overrun notice');
  expect(raceLine(0xdeadbeef, 5, undefined, 'event')).toBe(
    'accelnl: raced send: port 0xdeadbeef socket inode 5 changed hands during the send (now no socket); an event for it may have reached the next socket');
});
