// genl/sockopt.ts: the shim's in-band option message, parsed from the bytes the shim sends
// (shim/accelnl_shim.c send_sockopt) and applied to a target.
import { view } from '../attrs';
import { ACCELNL_MSG_SOCKOPT, applySockopt, parseSockopt, sockoptMessage } from '../genl/sockopt';

function message(optname: number, value: number, type = ACCELNL_MSG_SOCKOPT): Uint8Array {
  const b = Buffer.alloc(24);
  b.writeUInt32LE(24, 0); b.writeUInt16LE(type, 4); b.writeUInt32LE(optname, 16); b.writeUInt32LE(value, 20);
  return b;
}

test('parses the shim\'s message and nothing else', () => {
  expect(parseSockopt(view(message(11, 1)), 0, 24)).toEqual({ optname: 11, value: 1 });
  expect(parseSockopt(view(message(1, 5)), 0, 24)).toEqual({ optname: 1, value: 5 });
  expect(parseSockopt(view(message(11, 1, 0x10)), 0, 24)).toBeUndefined();   // a genl request
  expect(parseSockopt(view(message(11, 1)), 0, 20)).toBeUndefined();         // too short
  expect(Buffer.from(sockoptMessage(0x10001, 32448))).toEqual(Buffer.from(message(0x10001, 32448))); // ours, the same bytes
});

test('applies EXT_ACK, joins a known group, ignores an unknown one or option', () => {
  const seen: string[] = [];
  const t = {
    setExtAck: (on: boolean) => { seen.push(`ext-ack ${on}`); },
    join: (g: number) => { seen.push(`join ${g}`); return g === 5; },
    leave: (g: number) => { seen.push(`leave ${g}`); },
    setMaxRecvLen: (n: number) => { seen.push(`recv-len ${n}`); },
    setJoinAnswers: (on: boolean) => { seen.push(`join-answers ${on}`); },
    closing: () => { seen.push('closing'); },
  };
  expect(applySockopt({ optname: 11, value: 0 }, t)).toBe('ext-ack');
  expect(applySockopt({ optname: 1, value: 5 }, t)).toBe('join');
  expect(applySockopt({ optname: 1, value: 6 }, t)).toBe('ignored');
  expect(applySockopt({ optname: 1, value: 0 }, t)).toBe('ignored');
  expect(applySockopt({ optname: 2, value: 5 }, t)).toBe('leave');
  expect(applySockopt({ optname: 99, value: 1 }, t)).toBe('ignored');
  expect(applySockopt({ optname: 0x10001, value: 65536 }, t)).toBe('recv-len');
  expect(applySockopt({ optname: 0x10002, value: 1 }, t)).toBe('join-answers');
  expect(applySockopt({ optname: 0x10003, value: 0 }, t)).toBe('closing');
  expect(seen).toEqual(['ext-ack false', 'join 5', 'join 6', 'leave 5', 'recv-len 65536', 'join-answers true', 'closing']);
});
