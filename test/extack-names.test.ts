// Errors that say which attribute: a typed client (connectAccel, connectDrmRas) names what a daemon's
// extended ACK points at, from the family's spec, in the NetlinkError's extack and message; the same
// words the `accel` tool prints. Unit tests of the path naming and of the text, then the daemon.
import { NL_POLICY_TYPE_ATTR as P, nestEnd, nestStart, newWriter, putU32, putU64 } from '../attrs';
import { ENODEV, ENOENT } from '../attrs/errno';
import { type Daemon, startDaemon } from '../device';
import { connectAccel } from '../device/client';
import { connectDrmRas } from '../device/drm-ras-client';
import { ACCEL, CMD } from '../device/gen/accel';
import { NetlinkError, createClient, extackText, withNames } from '../genl';
import { loadSpec, nameError, resolvePath } from '../genl/ynl';

const spec = loadSpec(`# SPDX-License-Identifier: MIT
name: names-test
protocol: genetlink
doc: Test family.
attribute-sets:
  - name: top
    attributes:
      - { name: id, type: u32 }
      - { name: inner, type: nest, nested-attributes: inner }
      - { name: array, type: indexed-array, sub-type: nest, nested-attributes: inner }
      - { name: ids, type: indexed-array, sub-type: u32 }
  - name: inner
    attributes:
      - { name: size, type: u64 }
      - { name: deep, type: nest, nested-attributes: inner }
operations:
  list:
    - { name: get, doc: x, attribute-set: top, do: { request: { attributes: [id, inner] } } }
`, 'names-test.yaml');

describe('naming an attribute path from the spec', () => {
  test.each([
    [[1], 'id', undefined],
    [[2], 'inner', 'inner'],
    [[2, 1], 'inner.size', undefined],
    [[2, 2, 2, 1], 'inner.deep.deep.size', undefined],
    [[3, 7, 1], 'array[7].size', undefined],
    [[3], 'array', 'inner'],
    [[4, 2], 'ids[2]', undefined],
    [[2, 9], 'inner.9', undefined],     // a type the spec does not know, inside a known nest
  ] as const)('%j is %s', (path, name, set) => {
    expect(resolvePath(spec, 'top', path)).toEqual(set ? { name, set } : { name });
  });

  test('an unknown first type names nothing', () => {
    expect(resolvePath(spec, 'top', [9, 1])).toBeUndefined();
  });

  test('nameError names the offset and the missing attribute (inside the nest missNest points at)', () => {
    const e = nameError(spec, 1, new NetlinkError(22, { missType: 1, missNest: 24, missNestPath: [2, 2], offset: 32, attrPath: [2, 1] })) as NetlinkError;
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.extack).toMatchObject({ attrName: 'inner.size', missName: 'inner.deep.size' });
    expect(e.message).toBe('missing attribute inner.deep.size: Invalid argument (EINVAL)');
    // A missing top-level attribute; an unknown command and a client's own timeout are left alone.
    expect((nameError(spec, 1, new NetlinkError(22, { missType: 1 })) as NetlinkError).message).toBe('missing attribute id: Invalid argument (EINVAL)');
    const other = new NetlinkError(22, { missType: 1 });
    expect(nameError(spec, 99, other)).toBe(other);
    const local = Object.assign(new NetlinkError(110, { msg: 'no answer' }), { local: true });
    expect(nameError(spec, 1, local)).toBe(local);
    const plain = new RangeError('x');
    expect(nameError(spec, 1, plain)).toBe(plain);
  });

  test('withNames keeps errno, flags and the extack, and says the names', () => {
    const e = Object.assign(new NetlinkError(22, { msg: 'bad', offset: 20 }, true), { local: false });
    const n = withNames(e, 'id', undefined);
    expect(n).toMatchObject({ errno: 22, warning: true, local: false, extack: { msg: 'bad', offset: 20, attrName: 'id' } });
    expect(n.message).toBe('bad: Invalid argument (EINVAL)');  // a message of the peer's own is not repeated with the name
  });
});

describe('extackText', () => {
  const w = newWriter();
  putU64(w, P.MIN_VALUE_U, 1n);
  putU64(w, P.MAX_VALUE_U, 4n);
  const range = w.buf.slice(0, w.len);
  test.each([
    [{}, undefined],
    [{ msg: 'no such device' }, 'no such device'],
    [{ msg: 'no such device', attrName: 'dev-index' }, 'no such device'],
    [{ attrName: 'dev-index' }, 'attribute dev-index'],
    [{ msg: 'integer out of range', attrName: 'gemm.m', policy: range }, 'integer out of range: gemm.m must be from 1 to 4'],
    [{ missType: 3 }, 'missing attribute of type 3'],
    [{ missType: 3, missName: 'gemm.k' }, 'missing attribute gemm.k'],
    [{ msg: 'no device given', missType: 1, missName: 'dev-index' }, 'no device given'],
  ] as const)('%j', (x, text) => {
    expect(extackText(x)).toBe(text);
  });
});

describe("a daemon's errors, through the typed clients", () => {
  const PORT = 0x41720000 + (process.pid & 0xfff);
  let d: Daemon;
  beforeAll(() => { d = startDaemon({ port: PORT }); });
  afterAll(() => d.close());

  test('connectAccel: a missing attribute, one missing inside a nest, and the attribute an error points at', async () => {
    const c = await connectAccel({ serverPort: PORT });
    try {
      await expect(c.do(CMD.DEV_GET, {})).rejects.toMatchObject({
        errno: 22, message: 'no device given (by index, name or bus address): Invalid argument (EINVAL)',
        extack: { msg: 'no device given (by index, name or bus address)', missType: 1, missName: 'dev-index' },
      });
      await expect(c.do(CMD.JOB_SUBMIT, { devIndex: 0, gemm: { m: 4 } })).rejects.toMatchObject({
        errno: 22, message: 'missing attribute gemm.n: Invalid argument (EINVAL)', extack: { missName: 'gemm.n', missNestPath: [expect.any(Number)] },
      });
      await expect(c.do(CMD.DEV_GET, { devIndex: 9 })).rejects.toMatchObject({
        errno: ENODEV, message: 'no such device: No such device (ENODEV)', extack: { attrPath: [1], attrName: 'dev-index' },
      });
      // In a dump, whose NLMSG_DONE does not echo the request: the client kept it.
      await expect(c.dump(CMD.RAS_LOG_GET, { devIndex: 9 })).rejects.toMatchObject({ errno: ENODEV, extack: { attrName: 'dev-index' } });
    } finally { c.close(); }
  });

  test('connectDrmRas: a dump of an unknown node names node-id', async () => {
    const r = await connectDrmRas({ serverPort: PORT });
    try {
      await expect(r.errorCounters(99)).rejects.toMatchObject({
        errno: ENOENT, message: 'attribute node-id: No such file or directory (ENOENT)', extack: { attrName: 'node-id' },
      });
    } finally { r.close(); }
  });

  test('nothing bound at the port: the typed clients say the daemon is not running; the error is the client\'s own (local)', async () => {
    const none = 0x41740000 + (process.pid & 0xfff);
    const text = `cannot reach the accel daemon at netlink port 0x${none.toString(16)} (NETLINK_USERSOCK): nothing is bound there; `
      + 'is "accel daemon" running? (serverPort, or ACCEL_NL_PORT, chooses the port): Connection refused (ECONNREFUSED)';
    await expect(connectAccel({ serverPort: none })).rejects.toMatchObject({ errno: 111, local: true, message: text });
    await expect(connectDrmRas({ serverPort: none })).rejects.toMatchObject({ errno: 111, local: true, message: text });
    // The genl client alone names only the port, and marks it its own as well.
    const g = createClient({ serverPort: none });
    try {
      await expect(g.resolve('accel')).rejects.toMatchObject({ errno: 111, local: true, message: `cannot reach the server at port 0x${none.toString(16)}: Connection refused (ECONNREFUSED)` });
    } finally { g.close(); }
  });

  test('a client without a spec says the missing type by number', async () => {
    const g = createClient({ serverPort: PORT });
    try {
      const c = await connectAccel({ serverPort: PORT });
      const id = c.family.id;
      c.close();
      await expect(g.request(id, CMD.JOB_SUBMIT, { fill: (w) => { putU32(w, ACCEL.DEV_INDEX, 0); nestEnd(w, nestStart(w, ACCEL.GEMM)); } }))
        .rejects.toMatchObject({ message: 'missing attribute of type 1: Invalid argument (EINVAL)' });
    } finally { g.close(); }
  });
});
