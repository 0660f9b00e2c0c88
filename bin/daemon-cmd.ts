// `accel daemon` in the grammar: the rest of the line goes to bin/daemon.ts as it stands.
import { type Args, Exit } from './args';
import type { Ctx } from './context';
import { runDaemon } from './daemon';

export async function runDaemonCmd(_ctx: Ctx, a: Args): Promise<void> {
  const code = await runDaemon(a.rest());
  if (code !== 0) throw new Exit(code);
}
