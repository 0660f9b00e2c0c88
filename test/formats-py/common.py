# Shared by the independent decoders: read the payload, print the normal form, fail loudly.
# The normal form: snake_case names, integers as decimal strings, enums as their numbers (strings),
# bytes as lowercase hex, booleans as booleans.
import json
import sys


def payload():
    return sys.stdin.buffer.read()


def fail(msg):
    sys.stderr.write(msg + '\n')
    sys.exit(1)


def expect_seq(what, got, want):
    if list(got) != list(want):
        for i, (g, w) in enumerate(zip(got, want)):
            if g != w:
                fail(f'{what}: at {i} got {g!r}, the doc says {w!r}')
        fail(f'{what}: {len(got)} items, the doc says {len(want)}')


def emit(o):
    print(json.dumps(o))


EVENT_FIELDS = ['dev', 'seq', 'ts_ns', 'kind', 'block', 'severity', 'error_id', 'error_name', 'count', 'address',
                'syndrome', 'action', 'folded', 'first_ts_ns', 'last_ts_ns']
COUNTERS_FIELDS = ['dev', 'ts_ns', 'cursor', 'counters', 'rows_active', 'rows_pending', 'rma_threshold', 'rma']
COUNTER_FIELDS = ['block', 'severity', 'volatile_count', 'aggregate_count']
