# ynl's own spec loader (nlspec.SpecFamily from ../shared/peers/ynl: SPDX line, PyYAML, jsonschema
# with the schema of the spec's protocol level, then reference resolution) over many specs.
# stdin: JSON lines {"text": spec text}; stdout: JSON lines {"ok": bool, "stage": "schema"|"load", "path": [...], "msg": str}.
# argv: the ynl directory, a scratch directory.
import json
import os
import sys
import warnings

warnings.simplefilter('ignore')
ynl, scratch = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(ynl, 'tools/net/ynl/pyynl/lib'))
import jsonschema  # noqa: E402
import nlspec  # noqa: E402
import yaml  # noqa: E402
from nlspec import SpecFamily  # noqa: E402

import jsonschema.exceptions  # noqa: E402
import jsonschema.validators  # noqa: E402


class CachedJsonschema:
    # What nlspec.py calls, jsonschema.validate(spec, schema), minus re-checking the schema itself on
    # every call: the same validator class (validator_for the schema) and the same best_match error.
    ValidationError = jsonschema.ValidationError
    cache = {}

    @classmethod
    def validate(cls, instance, schema):
        key = json.dumps(schema, sort_keys=True)
        v = cls.cache.get(key)
        if v is None:
            v = cls.cache[key] = jsonschema.validators.validator_for(schema)(schema)
        err = jsonschema.exceptions.best_match(v.iter_errors(instance))
        if err is not None:
            raise err


SpecFamily.jsonschema = CachedJsonschema


class FastYaml:
    # nlspec.py's pyyaml.safe_load with libyaml's CSafeLoader (the same YAML 1.1 resolver, in C), the
    # schema files read once.
    schemas = {}

    @classmethod
    def safe_load(cls, stream):
        name = getattr(stream, 'name', '')
        if name in cls.schemas:
            return cls.schemas[name]
        out = yaml.load(stream, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
        if name.endswith('.yaml') and '/Documentation/netlink/' in name:
            cls.schemas[name] = out
        return out


nlspec.pyyaml = FastYaml
schemas = os.path.join(ynl, 'Documentation/netlink')
spec_file = os.path.join(scratch, 'spec.yaml')
for line in sys.stdin:
    text = json.loads(line)['text']
    with open(spec_file, 'w') as f:
        f.write(text)
    out = {'ok': True}
    try:
        proto = (yaml.safe_load(text) or {}).get('protocol', 'genetlink')
        schema = os.path.join(schemas, f'{proto}.yaml') if isinstance(proto, str) else os.path.join(schemas, 'none.yaml')
        SpecFamily(spec_file, schema)
    except jsonschema.ValidationError as e:
        out = {'ok': False, 'stage': 'schema', 'path': list(e.absolute_path), 'msg': e.message[:200]}
    except Exception as e:  # noqa: BLE001 - any refusal counts, as ynl would stop there
        out = {'ok': False, 'stage': 'load', 'path': [], 'msg': f'{type(e).__name__}: {e}'[:200]}
    print(json.dumps(out), flush=True)
