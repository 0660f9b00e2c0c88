# JSON from docs/formats/json.md: json.loads keeping key order, checked against the page's field
# order; enum names mapped to the accel spec's numbers (argv: JSON list of each enum's names).
import json
import sys
from common import COUNTER_FIELDS, COUNTERS_FIELDS, EVENT_FIELDS, emit, expect_seq, fail, payload

names = json.loads(sys.argv[1])
doc = json.loads(payload().decode('utf-8'), object_pairs_hook=lambda kv: kv)


def obj(pairs, fields, what):
    expect_seq(f'{what} keys', [k for k, _ in pairs], fields)
    return dict(pairs)


def u(k, v):
    # 64-bit fields: numbers up to 2^53 - 1, decimal strings above; u32 fields: numbers.
    if isinstance(v, bool): fail(f'{k}: boolean')
    if isinstance(v, int):
        if v > 2**53 - 1: fail(f'{k}: {v} should be a string')
        return str(v)
    if isinstance(v, str) and v.isdigit() and int(v) > 2**53 - 1: return v
    fail(f'{k}: {v!r}')


def event(p):
    e = obj(p, EVENT_FIELDS, 'event')
    return {k: (str(names[k].index(v)) if k in names else v if k in ('error_name', 'syndrome') else u(k, v))
            for k, v in e.items()}


if len(doc) != 1: fail(f'top level has {len(doc)} keys')
k, v = doc[0]
if k == 'events':
    emit({'events': [event(p) for p in v]})
elif k == 'counters':
    c = obj(v, COUNTERS_FIELDS, 'counters')
    cs = []
    for p in c['counters']:
        x = obj(p, COUNTER_FIELDS, 'counter')
        cs.append({'block': str(names['block'].index(x['block'])), 'severity': str(names['severity'].index(x['severity'])),
                   'volatile_count': u('volatile_count', x['volatile_count']),
                   'aggregate_count': u('aggregate_count', x['aggregate_count'])})
    if not isinstance(c['rma'], bool): fail('rma is not a boolean')
    emit({'counters': {'dev': u('dev', c['dev']), 'ts_ns': u('ts_ns', c['ts_ns']), 'cursor': u('cursor', c['cursor']),
                       'counters': cs, 'rows_active': u('rows_active', c['rows_active']),
                       'rows_pending': u('rows_pending', c['rows_pending']),
                       'rma_threshold': u('rma_threshold', c['rma_threshold']), 'rma': c['rma']}})
else:
    fail(f'top-level key {k}')
