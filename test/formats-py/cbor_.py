# CBOR from docs/formats/cbor.md: cbor2.loads, and the page's deterministic encoding checked by
# encoding back with cbor2's canonical mode (shortest forms, sorted keys): equal bytes.
import sys
import cbor2
from common import COUNTER_FIELDS, COUNTERS_FIELDS, EVENT_FIELDS, emit, fail, payload

data = payload()
o = cbor2.loads(data)
if cbor2.dumps(o, canonical=True) != data:
    fail('not the deterministic encoding (key order or integer/length forms)')


def n(v):
    if isinstance(v, bool): return v
    if isinstance(v, int): return str(v)
    if isinstance(v, bytes): return v.hex()
    if isinstance(v, str): return v
    fail(f'unexpected {type(v).__name__}')


def rec(m, fields):
    if sorted(m) != sorted(fields): fail(f'keys {sorted(m)}')
    return {k: [rec(x, COUNTER_FIELDS) for x in m[k]] if k == 'counters' else n(m[k]) for k in fields}


if list(o) == ['events']:
    emit({'events': [rec(e, EVENT_FIELDS) for e in o['events']]})
elif list(o) == ['counters']:
    emit({'counters': rec(o['counters'], COUNTERS_FIELDS)})
else:
    fail(f'top-level keys {list(o)}')
