# THRIFT from docs/formats/thrift.md: the page's own recipe, thrift --gen py (argv[1]: the gen-py
# directory) and TSerialization.deserialize with TCompactProtocolFactory; the field order is checked
# by serializing back (generated code writes in field-id order): equal bytes.
import sys
sys.path.insert(0, sys.argv[1])
from thrift.TSerialization import deserialize, serialize  # noqa: E402
from thrift.protocol.TCompactProtocol import TCompactProtocolFactory  # noqa: E402
from accelnl_ras_v1.ttypes import Payload  # noqa: E402
from common import emit, fail, payload  # noqa: E402

data = payload()
p = deserialize(Payload(), data, TCompactProtocolFactory())
if serialize(p, TCompactProtocolFactory()) != data:
    fail('bytes differ from the compact encoding of what they decode to (field order or wire types)')
u32 = lambda v: str(v & 0xffffffff)           # i32 reinterpreted as unsigned, as the page says
u64 = lambda v: str(v & 0xffffffffffffffff)   # i64 likewise
if p.counters is not None and p.events is not None: fail('both union fields set')
if p.counters is not None:
    c = p.counters
    emit({'counters': {'dev': u32(c.dev), 'ts_ns': u64(c.ts_ns), 'cursor': u64(c.cursor),
                       'counters': [{'block': str(x.block), 'severity': str(x.severity), 'volatile_count': u64(x.volatile_count),
                                     'aggregate_count': u64(x.aggregate_count)} for x in c.counters],
                       'rows_active': u32(c.rows_active), 'rows_pending': u32(c.rows_pending),
                       'rma_threshold': u32(c.rma_threshold), 'rma': c.rma}})
elif p.events is not None:
    emit({'events': [{'dev': u32(e.dev), 'seq': u64(e.seq), 'ts_ns': u64(e.ts_ns), 'kind': str(e.kind), 'block': str(e.block),
                      'severity': str(e.severity), 'error_id': u32(e.error_id),
                      'error_name': e.error_name if isinstance(e.error_name, str) else e.error_name.decode(),
                      'count': u32(e.count), 'address': u64(e.address), 'syndrome': bytes(e.syndrome).hex(),
                      'action': str(e.action), 'folded': u32(e.folded), 'first_ts_ns': u64(e.first_ts_ns),
                      'last_ts_ns': u64(e.last_ts_ns)} for e in p.events]})
else:
    fail('no union field set')
