// bin/accel, the launcher: every bundle it runs (the main one and those loaded on first use, such
// as monitor.js and the daemon's daemon-cmd.js) is compiled through V8's code cache, written once
// and then used. Run from a copy laid out as an installed package (no dist/inputs.json, no sources).
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const root = path.resolve(__dirname, '..');
let dir: string;

beforeAll(async () => {
  await require('../bin/build.js').build();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'accelnl-launcher-'));
  fs.cpSync(path.join(root, 'bin'), path.join(dir, 'bin'), { recursive: true });
  fs.cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true, filter: (f) => !f.includes('.cache') && !f.endsWith('inputs.json') });
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
}, 120000);
afterAll(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

/** `accel monitor --timeout 1` against a port nobody holds: it loads monitor.js, then gives up. */
function monitor(): void {
  spawnSync(process.execPath, [path.join(dir, 'bin/accel'), 'monitor', '--timeout', '1'], {
    env: { ...process.env, ACCEL_NL_PORT: String(0x7e000000 + (process.pid & 0xffff)), NODE_PATH: path.join(root, 'node_modules') },
    encoding: 'utf8', timeout: 20000,
  });
}

const caches = (name: string): string[] =>
  fs.readdirSync(path.join(dir, 'dist/.cache')).filter((f) => f.startsWith(`${name}.`) && f.endsWith('.cache'));

test('a bundle loaded on first use gets its own code cache, written once and then used', () => {
  monitor();
  expect(caches('accel.js')).toHaveLength(1);
  const [m] = caches('monitor.js');
  expect(m).toBeDefined();
  const file = path.join(dir, 'dist/.cache', m);
  const before = fs.statSync(file).mtimeMs;
  monitor();
  // Accepted: not written again (a rejected cache would be replaced at exit).
  expect(caches('monitor.js')).toEqual([m]);
  expect(fs.statSync(file).mtimeMs).toBe(before);
}, 60000);

/** Run the installed copy's `accel ARGS`; its exit status. */
function accel(...args: string[]): number | null {
  return spawnSync(process.execPath, [path.join(dir, 'bin/accel'), ...args], {
    env: { ...process.env, ACCEL_NL_PORT: String(0x7e000000 + (process.pid & 0xffff)), NODE_PATH: path.join(root, 'node_modules') },
    encoding: 'utf8', timeout: 20000,
  }).status;
}

/** The main bundle's cache: the commands it holds (its first line) and its size. */
function mainCache(): { commands: string[]; size: number; mtimeMs: number } {
  const [f] = caches('accel.js');
  const b = fs.readFileSync(path.join(dir, 'dist/.cache', f));
  const st = fs.statSync(path.join(dir, 'dist/.cache', f));
  return { commands: JSON.parse(b.toString('latin1', 0, b.indexOf(10))), size: b.length, mtimeMs: st.mtimeMs };
}

test('the main bundle\'s cache is written again after each command\'s first successful run, with what it compiled', () => {
  fs.rmSync(path.join(dir, 'dist/.cache'), { recursive: true, force: true });
  expect(accel('-V')).toBe(0);
  const first = mainCache();
  expect(first.commands).toEqual(['-V']);
  // A command that fails (no daemon) ran too little of itself to be kept: the cache stays.
  expect(accel('dev', 'show')).toBe(1);
  expect(mainCache()).toEqual(first);
  // The first successful `completion bash` adds its functions (the command table's walk, the script).
  expect(accel('completion', 'bash')).toBe(0);
  const second = mainCache();
  expect(second.commands).toEqual(['-V', 'completion bash']);
  expect(second.size).toBeGreaterThan(first.size);
  // Then both are in it: neither is written again.
  expect(accel('completion', 'bash')).toBe(0);
  expect(accel('-V')).toBe(0);
  expect(mainCache()).toEqual(second);
  // The values of options are not part of the command: a second port is no new one.
  const port = String(0x7e000000 + (process.pid & 0xffff));
  expect(accel('--port', port, '-V')).toBe(0);
  const third = mainCache();
  expect(third.commands).toEqual(['-V', 'completion bash', '--port -V']);
  expect(accel('--port', String(Number(port) + 1), '-V')).toBe(0);
  expect(mainCache()).toEqual(third);
  expect(caches('accel.js')).toHaveLength(1);
  expect(fs.readdirSync(path.join(dir, 'dist/.cache')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
}, 60000);

test('the cache\'s rules: a command is its options and first two words; a cache never shrinks', () => {
  const { commandOf, cacheUpdate, MAX_COMMANDS } = require('../bin/accel') as {
    commandOf(argv: string[]): string;
    cacheUpdate(disk: { commands: string[]; data: Buffer } | undefined, data: Buffer, command: string, ok: boolean):
      { commands: string[]; data: Buffer } | undefined;
    MAX_COMMANDS: number;
  };
  const argv = (...a: string[]): string[] => ['node', 'accel', ...a];
  expect(commandOf(argv('dev', 'show', 'accel0'))).toBe('dev show');
  expect(commandOf(argv('-j', '-p', 'ras', 'show'))).toBe('-j -p ras show');
  expect(commandOf(argv('--port', '0x41434345', '-batch', '/tmp/x', 'dev', 'show'))).toBe('--port -batch dev show');
  expect(commandOf(argv('daemon', '--config', '/etc/accel.yaml', '--tick', '250'))).toBe('--config --tick daemon');
  const small = Buffer.alloc(10, 1);
  const big = Buffer.alloc(20, 2);
  // No cache yet: this run's.
  expect(cacheUpdate(undefined, small, 'dev show', true)).toEqual({ commands: ['dev show'], data: small });
  expect(cacheUpdate(undefined, small, 'dev show', false)).toEqual({ commands: [], data: small });
  // A run with more code replaces the cache; one with less (a daemon whose unused code V8 flushed
  // after hours) leaves its data and only adds its command; one with nothing new writes nothing.
  expect(cacheUpdate({ commands: ['-V'], data: small }, big, 'dev show', true)).toEqual({ commands: ['-V', 'dev show'], data: big });
  expect(cacheUpdate({ commands: ['-V'], data: big }, small, 'daemon', true)).toEqual({ commands: ['-V', 'daemon'], data: big });
  expect(cacheUpdate({ commands: ['-V', 'daemon'], data: big }, small, 'daemon', true)).toBeUndefined();
  // The list is bounded.
  const full = Array.from({ length: MAX_COMMANDS }, (_, i) => `c${i}`);
  expect(cacheUpdate({ commands: full, data: big }, small, 'dev show', true)).toBeUndefined();
});

test('a damaged cache file (garbage, or a cache from before the command line) is ignored and rewritten', () => {
  fs.rmSync(path.join(dir, 'dist/.cache'), { recursive: true, force: true });
  expect(accel('-V')).toBe(0);
  const [f] = caches('accel.js');
  const file = path.join(dir, 'dist/.cache', f);
  const valid = fs.readFileSync(file);
  const raw = valid.subarray(valid.indexOf(10) + 1); // V8's data alone, as the launcher wrote it before
  for (const junk of [raw, Buffer.from('not a cache\n\x00\x01'), Buffer.from([0xc0, 0xde, 0x00, 0x01, 0x0a, 0xff]), Buffer.alloc(0)]) {
    fs.writeFileSync(file, junk);
    const r = spawnSync(process.execPath, [path.join(dir, 'bin/accel'), '-V'], {
      env: { ...process.env, NODE_PATH: path.join(root, 'node_modules') }, encoding: 'utf8', timeout: 20000,
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^accel utility, accelnl /);
    expect(mainCache().commands).toEqual(['-V']);
  }
}, 60000);
