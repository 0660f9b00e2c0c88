// Which Debian packages a test needs are missing. Tests never install anything: CI installs every
// package named in .ci/packages.txt before `npm ci && npm test` (.ci/run); on your own machine,
// `apt-get install -y` them. A test that needs a missing one skips and prints this reason.
import { spawnSync } from 'child_process';

const installed = (p: string): boolean =>
  spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout?.includes('install ok installed') ?? false;

/** Undefined when all are installed, else the reason to print when skipping. */
export function missingPackages(pkgs: string[]): string | undefined {
  const missing = pkgs.filter((p) => !installed(p));
  return missing.length
    ? `Debian package(s) not installed: ${missing.join(' ')} (listed in .ci/packages.txt; install with apt-get install -y ${missing.join(' ')})`
    : undefined;
}
