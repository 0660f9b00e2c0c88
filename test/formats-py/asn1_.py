# ASN.1 from docs/formats/asn1.md and ras.asn1: asn1crypto's DER parser (asn1crypto.parser, which
# checks tag and length encodings) walks the bytes along the module's component lists, read from
# ras.asn1, checking each component's universal tag against its declared type. argv: ras.asn1
import re
import sys
from asn1crypto import parser
from common import emit, fail, payload

mod = re.sub(r'--[^\n]*', '', open(sys.argv[1]).read())
types = {}
for name, body in re.findall(r'^(\w+) ::= SEQUENCE \{([^}]*)\}', mod, re.M):
    types[name] = [tuple(l.strip().split(None, 1)) for l in body.split(',') if l.strip()]
alias = dict(re.findall(r'^(\w+) ::= (INTEGER|ENUMERATED)\b', mod, re.M))
TAG = {'INTEGER': 2, 'ENUMERATED': 10, 'UTF8String': 12, 'OCTET': 4, 'BOOLEAN': 1, 'SEQUENCE': 16}


def tlv(b):
    cls, constructed, tag, header, contents, trailer = parser.parse(b, strict=True)
    return cls, constructed, tag, contents


def children(contents):
    out, off = [], 0
    while off < len(contents):
        cls, con, tag, header, body, trailer = parser.parse(contents[off:])
        out.append((cls, con, tag, body))
        off += len(header) + len(body) + len(trailer)
    return out


def value(decl, node):
    cls, con, tag, body = node
    base = alias.get(decl.split()[0], decl.split()[0])
    if cls != 0 or tag != TAG[base]: fail(f'{decl}: tag {cls}/{tag}')
    if base in ('INTEGER', 'ENUMERATED'):
        if body[0] & 0x80: fail('negative integer')
        return str(int.from_bytes(body, 'big'))
    if base == 'UTF8String': return body.decode('utf-8')
    if base == 'OCTET': return body.hex()
    if base == 'BOOLEAN':
        if body not in (b'\x00', b'\xff'): fail('DER boolean is 00 or ff')
        return body == b'\xff'
    fail(f'unexpected {decl}')


def seq(tname, node):
    cls, con, tag, body = node
    if (cls, con, tag) != (0, 1, 16): fail(f'{tname}: not a SEQUENCE')
    kids = children(body)
    comps = types[tname]
    if len(kids) != len(comps): fail(f'{tname}: {len(kids)} components, the module has {len(comps)}')
    out = {}
    for (name, decl), k in zip(comps, kids):
        m = re.match(r'SEQUENCE OF (\w+)', decl)
        if m:
            if (k[0], k[1], k[2]) != (0, 1, 16): fail(f'{name}: not a SEQUENCE OF')
            out[name.replace('-', '_')] = [seq(m.group(1), x) for x in children(k[3])]
        else:
            out[name.replace('-', '_')] = value(decl, k)
    return out


data = payload()
cls, con, tag, body = tlv(data)
if cls != 2 or not con: fail('RasPayload is a context-tagged CHOICE')
inner = children(body)
if len(inner) != 1: fail('EXPLICIT tag holds one value')
if tag == 0:
    emit({'counters': seq('Counters', inner[0])})
elif tag == 1:
    c, k, t, b = inner[0]
    if (c, k, t) != (0, 1, 16): fail('events: not a SEQUENCE OF')
    emit({'events': [seq('Event', x) for x in children(b)]})
else:
    fail(f'choice [{tag}]')
