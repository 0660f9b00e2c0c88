// Writing the CLI's output without creating process.stdout: Node builds that stream (net or tty
// machinery) on first touch, which costs a short command like `accel dev show` several ms of its
// start-up. Output goes to fd 1 with blocking writes; if fd 1 is non-blocking and full (EAGAIN),
// the rest, and everything after it, goes through process.stdout, in order. A reader that went
// away (`accel ras log | head`) ends the command quietly with status 0, as for iproute2.
import * as fs from 'fs';

let stream = false;

/**
 * From now on, output goes through process.stdout (long-running commands, which also write to it
 * directly), with the quiet exit on EPIPE.
 */
export function useStream(): void {
  if (stream) return;
  stream = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
}

function toStream(data: Buffer): void {
  useStream();
  process.stdout.write(data);
}

export function writeOut(s: string): void {
  const data = Buffer.from(s);
  if (stream) { toStream(data); return; }
  let off = 0;
  try {
    while (off < data.length) off += fs.writeSync(1, data, off, data.length - off);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPIPE') process.exit(0);
    if (code !== 'EAGAIN') throw e;
    toStream(data.subarray(off));
  }
}
