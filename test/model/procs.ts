// The model test's client processes: sock-proc.ts bundled once into a world-readable temp dir
// (test/helpers/nobody.ts), started as root (node) or as nobody (runuser -u nobody), driven by
// JSON lines. A command resolves with the process's answer; datagrams and overruns go to `onEvent`
// (which says whether they settled a request).
import { type ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import * as readline from 'readline';
import { ADDON_FILE } from '../../genl/native/load';
import { type NobodyBundle, bundleForNobody } from '../helpers/nobody';

export interface ProcEvent { ev: 'recv' | 'overrun'; sock: number; from?: number; uid?: number; groups?: number; hex?: string }

export interface Proc {
  /** Index in the coordinator's list, and the uid the process reported. */
  index: number;
  uid: number;
  cmd(op: string, sock: number, args?: Record<string, unknown>): Promise<number>;
  /** Ends the process (closing its sockets); resolves when it has exited. */
  stop(): Promise<void>;
}

export const bundleClient = (): NobodyBundle => bundleForNobody('test/model/sock-proc.ts');

export async function startProc(b: NobodyBundle, index: number, asNobody: boolean,
  onEvent: (p: Proc, e: ProcEvent) => boolean, onExit: (p: Proc, code: number | null, stderr: string) => void): Promise<Proc> {
  const node = [process.execPath, path.join(b.dir, 'main.js')];
  const child: ChildProcess = spawn(asNobody ? 'runuser' : node[0], asNobody ? ['-u', 'nobody', '--', ...node] : node.slice(1), {
    cwd: b.dir, stdio: ['pipe', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ACCELNL_NATIVE: path.join(b.dir, ADDON_FILE) },
  });
  let nextId = 1;
  let stderr = '';
  let exited = false;
  const waiting = new Map<number, (r: number) => void>();
  let ready: (uid: number) => void;
  const uid = new Promise<number>((r) => { ready = r; });
  const p: Proc = {
    index, uid: -1,
    cmd(op, sock, args = {}) {
      if (exited) return Promise.resolve(-32); // EPIPE: the process is gone
      const id = nextId++;
      child.stdin!.write(JSON.stringify({ id, op, sock, ...args }) + '\n');
      return new Promise((r) => waiting.set(id, r));
    },
    stop() {
      if (exited) return Promise.resolve();
      return new Promise((r) => { child.once('close', () => r()); child.stdin!.end(); });
    },
  };
  child.stderr!.on('data', (d) => { stderr += d; });
  /** True when the line resolved something someone awaits. */
  const handle = (line: string): boolean => {
    const m = JSON.parse(line) as { ev: string; id?: number; r?: number; uid?: number };
    if (m.ev === 'ready') { ready(m.uid!); return true; }
    if (m.ev === 'done') { waiting.get(m.id!)?.(m.r!); waiting.delete(m.id!); return true; }
    return onEvent(p, m as ProcEvent);
  };
  // One line at a time, with a turn of the event loop between lines: what an answer resolves
  // (the model updates after an await) happens before the next datagram of this process is
  // judged. readline alone hands over every line of a chunk in one go.
  const lines: string[] = [];
  let draining = false;
  const drain = async (): Promise<void> => {
    draining = true;
    while (lines.length) if (handle(lines.shift()!)) await new Promise((r) => setImmediate(r));
    draining = false;
  };
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    if (!draining) void drain();
  });
  child.on('close', (code) => {
    exited = true;
    for (const r of waiting.values()) r(-32);
    waiting.clear();
    onExit(p, code, stderr);
  });
  const t = setTimeout(() => ready(-1), 10000);
  p.uid = await uid;
  clearTimeout(t);
  if (p.uid < 0) throw new Error(`client process ${index} did not start: ${stderr}`);
  return p;
}
