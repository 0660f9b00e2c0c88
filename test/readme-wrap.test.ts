// The README's `accel wrap` ynl command line, run as written there: $YNL is the kernel's ynl peer,
// docs/netlink/specs/ our shipped specs. Catches an example that cannot run (it once left out
// --schema, and cli.py died looking for docs/netlink/genetlink.yaml, which we do not ship).
import * as fs from 'fs';
import * as path from 'path';
import { type Daemon, startDaemon } from '../device';
import { PY, REPO, type WrapEnv, asRoot, itIf, missing, wrapEnv } from './helpers/wrap';

const PORT = 0x415b0000 + (process.pid & 0xfff);
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const line = /^accel wrap -- \/usr\/bin\/python3 \$YNL\/.*$/m.exec(README)?.[0];
const why = missing({ python: ['yaml', 'jsonschema'], ynl: true });

let d: Daemon;
let env: WrapEnv;
beforeAll(async () => {
  await require('../bin/build.js').build();
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false });
  env = wrapEnv({ nobody: true });
});
afterAll(() => { d.close(); env.dispose(); });

/** The README's words, with $YNL and docs/netlink/specs/ pointing at the copies in env's dir. */
function argv(): string[] {
  return line!.split(/\s+/).slice(1).map((w) => w
    .replace('$YNL', env.ynl!)
    .replace(/^docs\/netlink\/specs\//, `${env.specs}/`));
}

test('the README names the ynl command line with $YNL', () => {
  expect(line).toBeDefined();
  expect(line).toContain(`${PY} $YNL/tools/net/ynl/pyynl/cli.py`);
});

describe.each(asRoot ? ['root', 'nobody'] as const : ['this user'] as const)('as %s', (user) => {
  const nobody = user === 'nobody';
  itIf(why ?? missing({ nobody }))("the README's ynl line dumps the devices", async () => {
    const r = await env.accel(argv(), { port: PORT, nobody, timeoutMs: 30000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("'dev-name': 'accel0'");
    expect(r.stdout).toContain("'dev-name': 'accel1'");
  });
});
