// CLI conventions a new user expects (issue 16): --version, exit 1 for runtime failures and 2 for
// usage, range errors that name the attribute and its range, `job wait last` across invocations,
// job run's checks, config errors naming the key, singular/plural, an unusable --state-dir, the
// server's error total, and bash completion generated from the command table (run through bash).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { ConfigError, type Daemon, parseConfig, startDaemon } from '../device';
import { runAccel, startAccel } from './helpers/cli';
import { connectAccel } from '../device/client';
import { CMD } from '../device/gen/accel';
import { NetlinkError, createClient, extackText } from '../genl';

const PORT = 0x414b0000 + (process.pid & 0xfff);
const SPARE = 0x414c0000 + (process.pid & 0xfff);
let d: Daemon;
let dir: string;
beforeAll(async () => {
  await require('../bin/build.js').build();
  // Busy polling on: every CLI run in this file is a client of a daemon that polls after answering.
  d = startDaemon({ port: PORT, config: 'devices: [{}, {}]', tick: false, computeThreads: 0, busyPollUs: 50 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-conv-'));
});
afterAll(() => { d.close(); fs.rmSync(dir, { recursive: true, force: true }); });

/** Each run with its own runtime dir, so `job wait last` state never leaks between test runs. */
const env = (): Record<string, string> => ({ XDG_RUNTIME_DIR: dir });
const accel = (...args: string[]) => runAccel(args, { port: PORT, env: env() });

test('a fresh build is not stale: every input the launcher checks exists and is older than the bundle', () => {
  // bin/accel rebuilds when a listed input is newer than the bundle or missing: an entry that is
  // no file (esbuild's "<stdin>") made every run rebuild.
  const root = path.join(__dirname, '..');
  const built = fs.statSync(path.join(root, 'dist/accel.js')).mtimeMs;
  const listed: Record<string, string[]> = JSON.parse(fs.readFileSync(path.join(root, 'dist/inputs.json'), 'utf8'));
  // Per bundle: the main one's sources are checked at every start, the others' on first use.
  expect(Object.keys(listed).sort()).toEqual(['accel.js', 'daemon-cmd.js', 'devlink.js', 'exporter.js', 'formats.js', 'index.js', 'monitor.js', 'yaml.js']);
  expect(listed['accel.js']).toContain('bin/main.ts');
  expect(listed['accel.js']).not.toContain('bin/monitor.ts');
  // devlink's spec module is loaded only by `accel -s family get devlink` (test/cli.test.ts reads its op names).
  expect(listed['accel.js']).not.toContain('device/gen/devlink.ts');
  expect(listed['devlink.js']).toContain('device/gen/devlink.ts');
  expect(listed['daemon-cmd.js']).toContain('device/gen/devlink.ts');
  const inputs = Object.values(listed).flat();
  expect(inputs.filter((f) => !(fs.statSync(path.join(root, f), { throwIfNoEntry: false })?.mtimeMs! <= built))).toEqual([]);
  // The YAML parser, which short commands never run, is a bundle of its own, not half of the CLI's.
  expect(fs.readFileSync(path.join(root, 'dist/accel.js'), 'utf8')).not.toContain('node_modules/yaml/');
  expect(require(path.join(root, 'dist/yaml.js')).parse('a: [1, 2]')).toEqual({ a: [1, 2] });
});

test('-V, -Version and --version print the package version', async () => {
  const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '../package.json'), 'utf8'));
  for (const o of ['-V', '-Version', '--version']) {
    expect(await accel(o)).toEqual({ code: 0, stdout: `accel utility, accelnl ${version}\n`, stderr: '' });
  }
});

test('range errors name the attribute and its range, from the CLI and from the daemon extack', async () => {
  expect(await accel('ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable', 'count', '4294967296'))
    .toEqual({ code: 2, stdout: '', stderr: 'Invalid count "4294967296": out of range, count is from 1 to 4294967295.\n' });
  // The CLI takes the range from the daemon's own policy (F7): count 0 is refused before it is sent...
  expect(await accel('ras', 'inject', 'accel0', 'block', 'hbm', 'severity', 'correctable', 'count', '0'))
    .toEqual({ code: 2, stdout: '', stderr: 'Invalid count "0": out of range, count is from 1 to 4294967295.\n' });
  // ... with the very message the daemon's policy gives when a client does send it: offset + policy name it.
  const c = await connectAccel({ serverPort: PORT });
  try {
    const e = await c.do(CMD.RAS_INJECT, { devIndex: 0, block: 'hbm', severity: 'correctable', count: 0 }).then(() => undefined, (x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(extackText((e as NetlinkError).extack)).toBe('integer out of range: count must be from 1 to 4294967295');
    // The library's error says the same, named from the spec by the typed client.
    expect((e as NetlinkError).extack.attrName).toBe('count');
    expect((e as NetlinkError).message).toBe('integer out of range: count must be from 1 to 4294967295: Numerical result out of range (ERANGE)');
  } finally { c.close(); }
});

test('exit status: a busy exporter port and an unwritable capture are runtime failures (1)', async () => {
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (busy.address() as net.AddressInfo).port;
    const r = await accel('exporter', '--listen', `127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
  } finally {
    busy.close();
  }
  const p = await accel('monitor', '--pcap', '/proc/nope/x.pcap');
  expect(p.code).toBe(1);
  expect(p.stderr).toMatch(/^Cannot write capture "\/proc\/nope\/x.pcap": ENOENT/);
  expect(await accel('monitor', 'frob')).toMatchObject({ code: 2 }); // still usage
});

describe('job', () => {
  const f32 = (xs: number[]): Buffer => Buffer.from(new Float32Array(xs).buffer);
  const f64 = (xs: number[]): Buffer => Buffer.from(new Float64Array(xs).buffer);
  beforeAll(() => {
    fs.writeFileSync(path.join(dir, 'a.f32'), f32([1, 2, 3, 4]));
    fs.writeFileSync(path.join(dir, 'a.f64'), f64([1, 2, 3, 4]));
  });
  const f = (n: string): string => path.join(dir, n);

  test('run checks each file against dtype and shape, needs c when beta != 0, takes 0 dimensions as BLAS does', async () => {
    expect(await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'a', f('a.f64'), 'b', f('a.f32'), 'out', f('c')))
      .toEqual({ code: 2, stdout: '', stderr: `Invalid a "${f('a.f64')}": 32 bytes, but A as 2x2 f32 takes 16 bytes.\n` });
    expect((await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'dtype', 'f64', 'a', f('a.f64'), 'b', f('a.f32'), 'out', f('c'))).stderr)
      .toBe(`Invalid b "${f('a.f32')}": 16 bytes, but B as 2x2 f64 takes 32 bytes.\n`);
    // lda 3: the last row may stop at its last column (2*3 - 1 = 5 elements) or be padded (6).
    expect((await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'lda', '3', 'a', f('a.f32'), 'b', f('a.f32'), 'out', f('c'))).stderr)
      .toBe(`Invalid a "${f('a.f32')}": 16 bytes, but A as 2x2 f32 with lda 3 takes 20 or 24 bytes.\n`);
    const beta = await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'beta', '0.5', 'a', f('a.f32'), 'b', f('a.f32'), 'out', f('c'));
    expect(beta).toMatchObject({ code: 2, stdout: '' });
    expect(beta.stderr).toMatch(/^Command line is not complete: beta is not 0, so "c FILE" is needed/);
    // A dimension of 0 is a job, as in BLAS: nothing to compute, and k = 0 gives C = beta * C. The
    // CLI, the daemon and the engine all take it (an empty operand is an empty file).
    fs.writeFileSync(f('empty'), '');
    expect(await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '0', 'beta', '0.5', 'a', f('empty'), 'b', f('empty'), 'c', f('a.f32'), 'out', f('c')))
      .toMatchObject({ code: 0, stderr: '' });
    expect([...new Float32Array(new Uint8Array(fs.readFileSync(f('c'))).buffer)]).toEqual([0.5, 1, 1.5, 2]);
    for (const [m, n, k, a, b] of [['0', '2', '2', 'empty', 'a.f32'], ['2', '0', '2', 'a.f32', 'empty']]) {
      expect(await accel('job', 'run', 'accel0', 'm', m, 'n', n, 'k', k, 'a', f(a), 'b', f(b), 'out', f('c'))).toMatchObject({ code: 0, stderr: '' });
      expect(fs.readFileSync(f('c')).length).toBe(0);
    }
    expect(await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'lda', '0', 'a', f('a.f32'), 'b', f('a.f32'), 'out', f('c')))
      .toEqual({ code: 2, stdout: '', stderr: 'Invalid lda "0": out of range, lda is from 1 to 4294967295.\n' });
    const ok = await accel('job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'beta', '1', 'a', f('a.f32'), 'b', f('a.f32'), 'c', f('a.f32'), 'out', f('c'));
    expect(ok).toMatchObject({ code: 0, stderr: '' });
    expect([...new Float32Array(new Uint8Array(fs.readFileSync(f('c'))).buffer)]).toEqual([8, 12, 18, 26]);
  });

  test('wait last: the last job this user submitted, across invocations; none yet is a clear error', async () => {
    const fresh = fs.mkdtempSync(path.join(dir, 'rt-'));
    const none = await runAccel(['job', 'wait', 'last'], { port: PORT, env: { XDG_RUNTIME_DIR: fresh } });
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`Error: no job submitted to the daemon at port 0x${PORT.toString(16)} by this user yet (none recorded in ${fresh}/accel/last-job-0x${PORT.toString(16)}).\n`);
    const run = await runAccel(['-j', 'job', 'run', 'accel0', 'm', '2', 'n', '2', 'k', '2', 'a', f('a.f32'), 'b', f('a.f32'), 'out', f('c')],
      { port: PORT, env: { XDG_RUNTIME_DIR: fresh } });
    const id = Object.keys(JSON.parse(run.stdout).job)[0];
    const waited = await runAccel(['-j', 'job', 'wait', 'last'], { port: PORT, env: { XDG_RUNTIME_DIR: fresh } });
    expect(Object.keys(JSON.parse(waited.stdout).job)).toEqual([id]);
    expect(fs.statSync(path.join(fresh, 'accel')).mode & 0o777).toBe(0o700);
    // The docs' batch example: submit, then wait last, in one batch.
    fs.writeFileSync(f('gemm.batch'), `bo create accel1 size 16\nbo create accel1 size 16\nbo create accel1 size 16\n` +
      `bo write 1 file ${f('a.f32')}\nbo write 2 file ${f('a.f32')}\njob submit accel1 m 2 n 2 k 2 a 1 b 2 c 3\njob wait last\nbo read 3 file ${f('c2')}\n`);
    const b = await runAccel(['-b', f('gemm.batch')], { port: PORT, env: { XDG_RUNTIME_DIR: fresh } });
    expect(b).toMatchObject({ code: 0, stderr: '' });
    const [submitted, waitedFor] = [...b.stdout.matchAll(/^job (\d+):/gm)].map((m) => m[1]);
    expect(waitedFor).toBe(submitted);
    expect(Number(submitted)).toBeGreaterThan(Number(id));
    expect([...new Float32Array(new Uint8Array(fs.readFileSync(f('c2'))).buffer)]).toEqual([7, 10, 15, 22]);
  });
});

describe('daemon configuration and state directory', () => {
  const daemon = (...args: string[]) => runAccel(['daemon', '--port', String(SPARE), ...args], { timeoutMs: 8000 });
  const conf = (name: string, text: string): string => { fs.writeFileSync(path.join(dir, name), text); return path.join(dir, name); };

  test('an empty file, a missing device list, duplicate bus addresses and indexes: errors naming the key', async () => {
    const cases: [string, string][] = [
      ['', 'the configuration is empty: give a devices list (devices: [] for none; docs/daemon.md)'],
      ['# nothing but a comment\n', 'the configuration is empty: give a devices list (devices: [] for none; docs/daemon.md)'],
      ['seed: 3\n', 'devices: missing: give a list (devices: [] for none, to hot-plug them with "accel dev add")'],
      ['devices:\n  - { bus-addr: "0000:03:00.0" }\n  - {}\n  - { bus-addr: "0000:03:00.0" }\n', 'devices[2].bus-addr: "0000:03:00.0" is already used by devices[0].bus-addr'],
      ['devices: [{ index: 4 }, { index: 4 }]\n', 'devices[1].index: 4 is already used by devices[0].index'],
    ];
    for (const [i, [text, msg]] of cases.entries()) {
      const file = conf(`c${i}.yaml`, text);
      expect(await daemon('--config', file)).toEqual({ code: 1, stdout: '', stderr: `accel daemon: ${file}: ${msg}\n` });
    }
  });

  test('every config error names its key path, mappings included', () => {
    const cases: [string, string][] = [
      ['storm: 5\ndevices: []', 'storm: expected a mapping (burst, interval-ms)'],
      ['storm: { bust: 3 }\ndevices: []', 'storm.bust: unknown key (burst, interval-ms)'],
      ['devices: [{ versions: 5 }]', 'devices[0].versions: expected a mapping (fixed, running, stored)'],
      ['devices: [{}, { versions: { running: 2 } }]', 'devices[1].versions.running: expected a mapping of name to version'],
      ['devices: [5]', 'devices[0]: expected a mapping'],
    ];
    for (const [text, msg] of cases) expect(() => parseConfig(text)).toThrow(new ConfigError(msg));
  });

  test('"1 device", "0 devices": singular and plural in the ready line', async () => {
    for (const [text, want] of [['devices: [{}]\n', '1 device (accel0)'], ['devices: []\n', '0 devices ()']]) {
      const file = conf('n.yaml', text);
      const r = await runAccel(['daemon', '--port', String(SPARE), '--config', file], { timeoutMs: 2000 });
      expect(r.stdout).toContain(`, ${want}`);
    }
  });

  test('--busy-poll: a time out of 0-1000 µs is a usage error; in range, the daemon serves', async () => {
    for (const v of ['5000', '-1', 'x', '1.5']) {
      const r = await daemon('--busy-poll', v);
      expect([r.code, r.stdout, r.stderr.split('\n')[0]]).toEqual([2, '', 'accel daemon: "--busy-poll" needs a time in µs, from 0 to 1000']);
    }
    expect((await daemon('--busy-poll')).stderr).toMatch(/^accel daemon: "--busy-poll" needs a time in µs/);
    const file = conf('busy.yaml', 'devices: [{}]\n');
    const p = startAccel(['daemon', '--port', String(SPARE), '--config', file, '--busy-poll', '50']);
    try {
      await p.waitFor(/ready:.*, 1 device \(accel0\); busy polling 50 µs\n/);
      const shown = await runAccel(['-j', 'dev', 'show'], { port: SPARE, env: env() });
      expect([shown.code, Object.values(JSON.parse(shown.stdout).dev).map((d) => (d as { name: string }).name)]).toEqual([0, ['accel0']]);
      // Requests one after another, from a client that polls too (so that each next request comes
      // within the daemon's 50 µs even on a loaded machine): the later ones were read while polling.
      const c = createClient({ serverPort: SPARE, busyPollUs: 50 });
      try {
        for (let i = 0; i < 100; i++) expect((await c.resolve('accel')).name).toBe('accel');
      } finally {
        c.close();
      }
      const server = JSON.parse((await runAccel(['-j', 'server', 'show'], { port: SPARE, env: env() })).stdout).server;
      expect(server.busy_poll_us).toBe(50);
      expect(server.busy_polled).toBeGreaterThan(0);
    } finally {
      expect(await p.stop()).toMatchObject({ code: 0, stderr: '' });
    }
  });

  test('an unusable --state-dir: a message and exit 1, promptly (Node\'s recursive mkdir spun on /proc)', async () => {
    const t0 = Date.now();
    expect(await daemon('--state-dir', '/proc/nope/deeper')).toEqual({
      code: 1, stdout: '', stderr: "accel daemon: state directory /proc/nope/deeper: ENOENT: no such file or directory, mkdir '/proc/nope'\n",
    });
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

test('server show: the error total is the sum of its causes (dump errors included)', async () => {
  await accel('dev', 'show', 'accel9'); // ENODEV (a do)
  await accel('ras', 'log', 'accel9');  // an error that ends a dump
  const j = JSON.parse((await accel('-j', 'server', 'show')).stdout).server;
  const sum = Object.values(j.rejected as Record<string, number>).reduce((a, b) => a + b, 0);
  expect(sum).toBeGreaterThanOrEqual(2);
  expect(j.errors).toBe(sum);
});

describe('bash completion', () => {
  const bash = spawnSync('bash', ['-c', 'type complete compgen'], { encoding: 'utf8' });
  const it_ = bash.status === 0 ? it : it.skip;
  if (bash.status !== 0) console.warn('skipping bash completion tests: no bash with complete/compgen');

  it_('generated from the command table: objects, commands, keywords and enum values, abbreviations resolved', async () => {
    const script = await accel('completion', 'bash');
    expect(script.code).toBe(0);
    const file = path.join(dir, 'accel.bash');
    fs.writeFileSync(file, script.stdout);
    const complete = (line: string): string[] => {
      const words = line.split(' ');
      const r = spawnSync('bash', ['-c', `source ${file}; complete -p accel >/dev/null || exit 3
        COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _accel; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      return r.stdout.split('\n').filter(Boolean);
    };
    const help = (await accel('help')).stdout;
    const objects = /OBJECT := \{ ([^}]*) \}/.exec(help)![1].split(' | ');
    expect(complete('accel ')).toEqual([...objects, 'help']);
    expect(complete('accel -j d')).toEqual(['dev', 'daemon']);
    expect(complete('accel r ')).toEqual(['show', 'clear', 'inject', 'log', 'help']);
    expect(complete('accel ras inj accel0 block s')).toEqual(['severity', 'sub_block', 'syndrome', 'sram', 'soc-fabric']);
    expect(complete('accel ras inject accel0 severity uncorr')).toEqual(['uncorrectable-nonfatal', 'uncorrectable-fatal']);
    expect(complete('accel health set accel0 reporter fw auto_')).toEqual(['auto_recover', 'auto_dump']);
    expect(complete('accel job wait ')).toEqual(['last', 'timeout']);
    expect(complete('accel monitor ')).toEqual(['all', '--pcap', '--timeout', 'dev', 'ras', 'health', 'job', 'help']);
    expect(complete('accel daemon --st')).toEqual(['--state-dir']);
    expect(complete('accel -p')).toEqual(['-pretty', '-port']);
    expect(complete('accel --port 0x10 -j s')).toEqual(['server']);
  });
});
