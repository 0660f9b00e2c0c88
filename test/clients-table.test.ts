// genl/clients.ts against scripted socket tables: a port left out of one sock_diag dump (the
// kernel walks its socket hash in passes while others come and go) is not taken for a closed socket.
import { type SocketClient, clientOf, newClientTable, present, staleTable, verified } from '../genl/clients';
import { newCounters } from '../genl/counters';
import { type ServerSocket, datagramKind, ensureCopy, flushOutbox, newOutbox, pushSpan, raceLine, retryQueues } from '../genl/outbox';
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

// The re-check after a checked send (genl/outbox.ts, docs/transport.md "Client identity"): a
// netlink send names a port, so a port that changes hands between the last check and the send
// can pass a datagram to the next socket. It cannot be prevented; every such datagram is counted
// (racedSends) and logged, one line each. Scripted tables play the kernel's on either side of it.
describe('a port that changed hands during a checked send is reported (raced)', () => {
  const ok = (n: number) => ({ port: 1, sendMany: (_d: Uint8Array, _s: Int32Array, count = 1, res?: Int32Array) => { res?.fill(0, 0, count); return count; }, n });
  /** An outbox whose table answers `answers` in turn, one client (port 7, inode 100) made with the first. */
  const setup = (answers: (SocketTable | undefined)[], socket: ServerSocket = ok(0)) => {
    const t = newClientTable(() => answers.shift());
    const lines: string[] = [];
    const counters = newCounters();
    const ob = newOutbox({
      clients: t, counters, wake: () => {}, onStall: () => {},
      opts: { maxBacklog: 8, maxBacklogBytes: 1 << 20, maxBacklogTotal: 1 << 20, stallMs: 30000, batchEvents: true, log: (l) => lines.push(l) },
    });
    ob.socket = socket;
    const c = clientOf(t, 7, 0, 0, 42);
    return { t, ob, c, lines, counters, answers };
  };
  /** A dump chunk (NLM_F_MULTI, nlmsg_pid 7) to `c`, from a later callback: the flush checks it. */
  const pushChunk = (ob: ReturnType<typeof setup>['ob'], c: SocketClient) => {
    const at = ob.out.len;
    ensureCopy(ob.out, new Uint8Array([20, 0, 0, 0, 0x10, 0, 2, 0, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]));
    pushSpan(ob, at, c, true);
  };

  test('the port has another socket after the send: counted and logged, with the datagram\'s kind', () => {
    // First sight; the check before the send; the re-check after it (inode 200 holds port 7 now).
    const { ob, c, lines, counters, t } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(1);
    expect(lines).toEqual(['accelnl: raced send: port 0x00000007 socket inode 100 changed hands during the send ' +
      '(now inode 200); a dump chunk for it may have reached the next socket']);
    expect(t.queries).toBe(3);
  });

  test('the same socket on the port after the send: nothing reported', () => {
    const { ob, c, lines, counters, t } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 100))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(0);
    expect(lines).toEqual([]);
    expect(t.queries).toBe(3);
  });

  test('missing from the dump after the send but there on the second: the same socket, nothing reported', () => {
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(), tableOf(sock(7, 100))]);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(0);
    expect(lines).toEqual([]);
  });

  test('missing twice after the send (closed, maybe rebound and closed again): reported, one line per datagram', () => {
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(), tableOf()]);
    pushChunk(ob, c);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(2);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('(now no socket); a dump chunk for it');
  });

  test('a flush that checks nothing (replies in their own callback) reads no table after the send', () => {
    const { ob, c, lines, t } = setup([tableOf(sock(7, 100))]);
    return nextTurn().then(() => {
      const at = ob.out.len;
      ensureCopy(ob.out, new Uint8Array([16, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0]));
      pushSpan(ob, at, c, false);
      flushOutbox(ob);
      expect(t.queries).toBe(1);
      expect(lines).toEqual([]);
    });
  });

  test('sendManyHeld\'s own re-check: a span whose port has another inode after the send is reported', () => {
    const afterInode = [100, 300];
    const held: ServerSocket = {
      ...ok(0),
      sendManyHeld: (_d, _s, count, res, inodes, after) => {
        for (let i = 0; i < count; i++) { res[i] = 0; after![i] = inodes[i] ? afterInode[i] : 0; }
        return count;
      },
    };
    const { ob, c, lines, counters, t } = setup([tableOf(sock(7, 100))], held);
    const d = clientOf(t, 8, 0, 0, 43);  // no table left: an unchecked client (inode unknown)
    ob.heldSends = true;
    c.sock = sock(7, 100);
    d.sock = sock(8, 100);
    pushChunk(ob, c);
    pushChunk(ob, d);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(1);
    expect(lines).toEqual(['accelnl: raced send: port 0x00000008 socket inode 100 changed hands during the send ' +
      '(now inode 300); a dump chunk for it may have reached the next socket']);
  });

  test('an addon that leaves `after` untouched (built before it): the re-check is made in JavaScript', () => {
    const old: ServerSocket = { ...ok(0), sendManyHeld: (_d, _s, count, res) => { res.fill(0, 0, count); return count; } };
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 200))], old);
    ob.heldSends = true;
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(counters.racedSends).toBe(1);
    expect(lines[0]).toContain('socket inode 100 changed hands during the send (now inode 200)');
  });

  test('a retried queue datagram is checked again after it goes out', () => {
    let full = true;
    const sometimesFull: ServerSocket = {
      port: 1,
      sendMany: (_d, _s, count = 1, res) => { res!.fill(full ? -11 : 0, 0, count); return full ? 0 : count; },
    };
    // First sight; the flush's check (then EAGAIN: queued); the retry's check; the re-check after it.
    const { ob, c, lines, counters } = setup([tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 100)), tableOf(sock(7, 200))], sometimesFull);
    pushChunk(ob, c);
    flushOutbox(ob);
    expect(ob.backlog.get(7)?.q).toHaveLength(1);
    full = false;
    ob.backlog.get(7)!.retryAt = 0;
    staleTable(ob.clients);
    retryQueues(ob);
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
