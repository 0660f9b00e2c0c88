# KEY_VAL_32 from docs/formats/key-val-32.md alone: the key registry and the string registry are
# parsed from the page's tables; the key sequence of every record is checked against the registry
# order the page prescribes. argv: key-val-32.md
import re
import struct
import sys
from common import emit, expect_seq, fail, payload

doc = open(sys.argv[1]).read()
rows = re.findall(r'^\| (0x[0-9a-f]+[^|]*?) \| ([A-Z_0-9]+) \| (both|event|counters|-) \|', doc, re.M)
if len(rows) < 30:
    fail(f'key registry not found in the page ({len(rows)} rows)')
keys = {}
order = {'event': [], 'counters': []}
for key, name, rec in rows:
    if re.fullmatch(r'0x[0-9a-f]+', key):
        keys[name] = int(key, 16)
    for r in ('event', 'counters'):
        if rec in (r, 'both'):
            order[r].append(name)
strings = {int(i): ('' if s.startswith('(empty') else s)
           for i, s in re.findall(r'^\| (\d+) \| ([^|]+?) \|$', doc, re.M)}
blocks, sevs = 11, 4


def expected(kind, rec):
    # The key sequence the page prescribes for this record.
    out = [keys['RECORD']]
    for n in order[kind]:
        if n == 'SYNDROME':
            out += [keys['SYNDROME']] * ((rec[keys['SYNDROME_LEN']] + 3) // 4)
        elif n == 'COUNTER_VOLATILE':
            out += [0x1000 + (b << 4) + (s << 1) + a for b in range(blocks) for s in range(sevs) for a in (0, 1)]
        elif n == 'COUNTER_AGGREGATE':
            pass  # interleaved with COUNTER_VOLATILE above: volatile, aggregate per block x severity
        else:
            out.append(keys[n])
    return out


data = payload()
if len(data) % 8:
    fail('length is not a multiple of 8')
pairs = list(struct.iter_unpack('<II', data))
if not pairs or pairs[0] != (keys['VERSION'], 1):
    fail(f'first pair {pairs[:1]} is not VERSION 1')
recs = []
for k, v in pairs[1:]:
    if k == keys['RECORD']:
        recs.append({'type': v, 'seq': [k], 'kv': {}, 'syn': b''})
        continue
    if not recs:
        fail('a key before the first RECORD')
    r = recs[-1]
    r['seq'].append(k)
    if k == keys['SYNDROME']:
        r['syn'] += struct.pack('<I', v)
    else:
        r['kv'][k] = v


def g(r, n): return r['kv'][keys[n]]
def g64(r, n): return str(g(r, n + '_HI') << 32 | g(r, n + '_LO'))


if recs and recs[0]['type'] == 1:
    if len(recs) != 1:
        fail('a counters payload holds one record')
    r = recs[0]
    expect_seq('counters record keys', r['seq'], expected('counters', r['kv']))
    cs = [{'block': str(b), 'severity': str(s), 'volatile_count': str(r['kv'][0x1000 + (b << 4) + (s << 1)]),
           'aggregate_count': str(r['kv'][0x1000 + (b << 4) + (s << 1) + 1])} for b in range(blocks) for s in range(sevs)]
    emit({'counters': {'dev': str(g(r, 'DEV')), 'ts_ns': g64(r, 'TS'), 'cursor': g64(r, 'CURSOR'), 'counters': cs,
                       'rows_active': str(g(r, 'ROWS_ACTIVE')), 'rows_pending': str(g(r, 'ROWS_PENDING')),
                       'rma_threshold': str(g(r, 'RMA_THRESHOLD')), 'rma': g(r, 'RMA') == 1}})
else:
    out = []
    for r in recs:
        if r['type'] != 2:
            fail(f'RECORD {r["type"]} in an events payload')
        expect_seq('event record keys', r['seq'], expected('event', r['kv']))
        out.append({'dev': str(g(r, 'DEV')), 'seq': g64(r, 'SEQ'), 'ts_ns': g64(r, 'TS'), 'kind': str(g(r, 'KIND')),
                    'block': str(g(r, 'BLOCK')), 'severity': str(g(r, 'SEVERITY')), 'error_id': str(g(r, 'ERROR_ID')),
                    'error_name': strings[g(r, 'ERROR_NAME')], 'count': str(g(r, 'COUNT')), 'address': g64(r, 'ADDR'),
                    'syndrome': r['syn'][:g(r, 'SYNDROME_LEN')].hex(), 'action': str(g(r, 'ACTION')),
                    'folded': str(g(r, 'FOLDED')), 'first_ts_ns': g64(r, 'FIRST_TS'), 'last_ts_ns': g64(r, 'LAST_TS')})
    emit({'events': out})
