// genl/clients.ts against scripted socket tables: a port left out of one sock_diag dump (the
// kernel walks its socket hash in passes while others come and go) is not taken for a closed socket.
import { clientOf, newClientTable, present, verified } from '../genl/clients';
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
