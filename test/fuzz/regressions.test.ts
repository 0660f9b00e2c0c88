// One test per bug the fuzzing and hostile-client work found, and for the limits added with them.
// Each names the bug; the fuzz corpus (test/fuzz/corpus/) keeps the inputs that found some of them.
import * as A from '../../attrs';
import { manualClock } from '../../device/clock';
import { addDevice, newEmulator } from '../../device/emulator';

describe('attrs writer', () => {
  // Bug: `w.dv.setUint32(reserve(w, ...), v)` reads w.dv before reserve() grows the buffer, so the
  // value went into the old buffer and the new one kept zeros (or threw past its end).
  test('an integer put that makes the buffer grow keeps its value', () => {
    const puts: [string, (w: A.Writer) => void, (v: A.View, at: number) => unknown, unknown][] = [
      ['u8', (w) => A.putU8(w, 1, 0xab), A.getU8, 0xab],
      ['u16', (w) => A.putU16(w, 1, 0xabcd), A.getU16, 0xabcd],
      ['s16', (w) => A.putS16(w, 1, -2), A.getS16, -2],
      ['u32', (w) => A.putU32(w, 1, 0xdeadbeef), A.getU32, 0xdeadbeef],
      ['s32', (w) => A.putS32(w, 1, -5), A.getS32, -5],
      ['be16', (w) => A.putBe16(w, 1, 0x1234), A.getBe16, 0x1234],
      ['be32', (w) => A.putBe32(w, 1, 0x12345678), A.getBe32, 0x12345678],
      ['u64', (w) => A.putU64(w, 1, 0x1122334455667788n), A.getU64, 0x1122334455667788n],
      ['s64', (w) => A.putS64(w, 1, -3n), A.getS64, -3n],
      ['uint', (w) => A.putUint(w, 1, 0x1122334455n), A.getUint, 0x1122334455],
      ['uint32', (w) => A.putUint(w, 1, 7), A.getUint, 7],
      ['sint', (w) => A.putSint(w, 1, -0x1122334455n), A.getSint, -0x1122334455],
      ['sint32', (w) => A.putSint(w, 1, -7), A.getSint, -7],
    ];
    for (const [name, put, get, want] of puts) {
      for (const cap of [1, 4, 8]) {
        const w = A.newWriter(cap);
        put(w);
        expect([name, cap, get(A.view(A.bytes(w)), 0)]).toEqual([name, cap, want]);
      }
    }
  });
});

describe('device model', () => {
  // Bug: after a device at index 0xffffffff, dev-new without an index took 2^32; every message
  // naming that device then threw "does not fit u32" inside the handlers.
  test('device indices stay u32', () => {
    const emu = newEmulator(manualClock());
    addDevice(emu, { index: 0xffffffff });
    expect(() => addDevice(emu)).toThrow(/no free device index/);
    expect([...emu.devices.keys()]).toEqual([0xffffffff]);
  });
});
