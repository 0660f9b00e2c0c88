// Installing the Debian packages a test needs (tshark, libnl, pyroute2), idempotently: nothing is
// run when they are already installed; `apt-get update` only when a package is not found.
import { spawnSync } from 'child_process';

const installed = (p: string): boolean =>
  spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed') ?? false;

/** Undefined when all are installed (now or before), else why they could not be. */
export function ensurePackages(pkgs: string[]): string | undefined {
  const missing = pkgs.filter((p) => !installed(p));
  if (!missing.length) return undefined;
  if (process.getuid?.() !== 0) return `not root: cannot apt-get install ${missing.join(' ')}`;
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', ...missing], { encoding: 'utf8', env, timeout: 300000 });
  let r = install();
  if (r.status !== 0) {
    spawnSync('apt-get', ['update', '-q'], { encoding: 'utf8', env, timeout: 300000 });
    r = install();
  }
  const still = missing.filter((p) => !installed(p));
  return still.length ? `apt-get install ${still.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}` : undefined;
}
