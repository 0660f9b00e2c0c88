# NETLINK from docs/formats/netlink.md: TLVs walked with struct, attribute ids and types taken from
# the spec (docs/netlink/specs/accel.yaml) by the rule the page gives, the order checked against the
# page's Order section. argv: accel.yaml counters|events
import struct
import sys
import yaml
from common import emit, expect_seq, fail, payload

NESTED = 0x8000
spec = yaml.safe_load(open(sys.argv[1]))
sets = {}
for s in spec['attribute-sets']:
    v, attrs = 0, {}
    for a in s['attributes']:
        v = a.get('value', v + 1)
        attrs[a['name']] = (v, a['type'])
    sets[s['name']] = attrs


def tlvs(b):
    out, off = [], 0
    while off < len(b):
        if len(b) - off < 4:
            fail(f'{len(b) - off} trailing bytes')
        ln, typ = struct.unpack_from('<HH', b, off)
        if ln < 4 or off + ln > len(b):
            fail(f'bad nla_len {ln} at {off}')
        out.append((typ, b[off + 4:off + ln]))
        pad = (ln + 3) & ~3
        if b[off + ln:off + pad] != b'\0' * (pad - ln):
            fail('non-zero padding')
        off += pad
    return out


def value(t, raw):
    if t == 'u8' and len(raw) == 1: return str(raw[0])
    if t == 'u32' and len(raw) == 4: return str(struct.unpack('<I', raw)[0])
    if t == 'u64' and len(raw) == 8: return str(struct.unpack('<Q', raw)[0])
    if t == 'string':
        if not raw.endswith(b'\0'): fail('string without its NUL')
        return raw[:-1].decode()
    if t == 'binary': return raw.hex()
    fail(f'{t} of {len(raw)} bytes')


def nest(setname, raw, names):
    # A nest holding exactly `names` of set `setname`, in that order.
    got = tlvs(raw)
    ids = {v: (n, t) for n, (v, t) in sets[setname].items()}
    expect_seq(f'{setname} nest', [t for t, _ in got], [sets[setname][n][0] for n in names])
    return {ids[t][0].replace('-', '_'): value(ids[t][1], raw2) for t, raw2 in got}


def top(name):
    v, t = sets['accel'][name]
    return v | NESTED if t == 'nest' else v


data = payload()
items = tlvs(data)
if sys.argv[2] == 'counters':
    # Order section: dev-index, ts-ns, cursor, 44 counter nests, one memory nest.
    expect_seq('counters payload', [t for t, _ in items],
               [top('dev-index'), top('ts-ns'), top('cursor')] + [top('counter')] * 44 + [top('memory')])
    a = sets['accel']
    cs = [nest('counter', raw, ['block', 'severity', 'volatile', 'aggregate']) for _, raw in items[3:47]]
    mem = nest('memory', items[47][1], ['rows-active', 'rows-pending', 'rma-threshold', 'rma'])
    emit({'counters': {
        'dev': value(a['dev-index'][1], items[0][1]), 'ts_ns': value(a['ts-ns'][1], items[1][1]),
        'cursor': value(a['cursor'][1], items[2][1]),
        'counters': [{'block': c['block'], 'severity': c['severity'], 'volatile_count': c['volatile'],
                      'aggregate_count': c['aggregate']} for c in cs],
        'rows_active': mem['rows_active'], 'rows_pending': mem['rows_pending'],
        'rma_threshold': mem['rma_threshold'], 'rma': mem['rma'] == '1'}})
else:
    expect_seq('events payload', [t for t, _ in items], [top('event')] * len(items))
    # Every attribute of the event set, in id order.
    names = sorted(sets['event'], key=lambda n: sets['event'][n][0])
    evs = [nest('event', raw, names) for _, raw in items]
    ren = {'dev_index': 'dev'}
    emit({'events': [{ren.get(k, k): v for k, v in e.items()} for e in evs]})
