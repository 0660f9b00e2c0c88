# PROTOBUF and GRPC from docs/formats/protobuf.md and grpc.md: the messages come from ras.proto
# compiled by protoc --python_out (argv[1]: that directory), parsed by python3-protobuf; the wire
# order is checked by re-serializing (fields in field-number order, as the page says): equal bytes.
# argv: gen-dir protobuf|grpc counters|events
import struct
import sys
if __name__ == '__main__':
    sys.path.insert(0, sys.argv[1])
import ras_pb2  # noqa: E402
from common import emit, fail, payload  # noqa: E402


def event(e):
    return {'dev': str(e.dev), 'seq': str(e.seq), 'ts_ns': str(e.ts_ns), 'kind': str(e.kind), 'block': str(e.block),
            'severity': str(e.severity), 'error_id': str(e.error_id), 'error_name': e.error_name, 'count': str(e.count),
            'address': str(e.address), 'syndrome': e.syndrome.hex(), 'action': str(e.action), 'folded': str(e.folded),
            'first_ts_ns': str(e.first_ts_ns), 'last_ts_ns': str(e.last_ts_ns)}


def counters(c):
    return {'dev': str(c.dev), 'ts_ns': str(c.ts_ns), 'cursor': str(c.cursor),
            'counters': [{'block': str(x.block), 'severity': str(x.severity), 'volatile_count': str(x.volatile_count),
                          'aggregate_count': str(x.aggregate_count)} for x in c.counters],
            'rows_active': str(c.rows_active), 'rows_pending': str(c.rows_pending),
            'rma_threshold': str(c.rma_threshold), 'rma': c.rma}


def parse(cls, b):
    m = cls.FromString(b)
    if m.UnknownFields() if hasattr(m, 'UnknownFields') else False:
        fail(f'{cls.__name__}: fields ras.proto does not know')
    if m.SerializeToString(deterministic=True) != b:
        fail(f'{cls.__name__}: bytes are not in field-number order (re-serialized differently)')
    return m


if __name__ == '__main__':
    data = payload()
    fmt, kind = sys.argv[2], sys.argv[3]
    if fmt == 'protobuf':
        p = parse(ras_pb2.Payload, data)
        body = p.WhichOneof('body')
        if body != kind: fail(f'Payload holds {body}, expected {kind}')
        emit({'counters': counters(p.counters)} if kind == 'counters' else {'events': [event(e) for e in p.events.events]})
    else:
        msgs, off = [], 0
        while off < len(data):
            flag, ln = struct.unpack_from('>BI', data, off)
            if flag != 0: fail(f'compressed flag {flag}')
            msgs.append(data[off + 5:off + 5 + ln])
            off += 5 + ln
        if off != len(data): fail('last frame cut short')
        if kind == 'counters':
            if len(msgs) != 1: fail(f'{len(msgs)} Counters messages')
            emit({'counters': counters(parse(ras_pb2.Counters, msgs[0]))})
        else:
            emit({'events': [event(parse(ras_pb2.Event, m)) for m in msgs]})
