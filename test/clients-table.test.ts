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
