// Prints one plain closing line, "N passed, N failed[, N skipped]", which CI systems read.
//
// It also bounds the wait after the run. When the tests run in the main process (one worker, as on
// a 2-core CI machine), a socket or timer a failed test left open keeps Jest alive for ever ("Jest
// did not exit one second after the test run has completed"), and CI only stops at its time limit.
// So if the process is still here EXIT_AFTER_MS after the run, the handles still open are named and
// the process exits with status 1: failed tests already fail the run, and a leaked handle is a
// defect too.
'use strict';
const EXIT_AFTER_MS = 15000;

class SummaryReporter {
  onRunComplete(_contexts, r) {
    const skipped = r.numPendingTests + r.numTodoTests;
    process.stdout.write(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
    // unref: this timer never keeps the process alive; it fires only if something else does.
    setTimeout(() => {
      const open = [...(process._getActiveHandles?.() ?? []).map(describe).filter(Boolean),
        ...process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap' && x !== 'Timeout')];
      process.stderr.write(`\njest: still running ${EXIT_AFTER_MS / 1000} s after the tests ended; ` +
        `open handles: ${open.join(', ') || 'none listed'}. Exiting with status 1.\n`);
      process.exit(1);
    }, EXIT_AFTER_MS).unref();
  }
}

function describe(h) {
  const name = h?.constructor?.name ?? typeof h;
  if (h === process.stdout || h === process.stderr || h === process.stdin) return '';
  if (name === 'ChildProcess') return `child process ${h.pid} (${h.spawnargs?.slice(0, 3).join(' ')})`;
  if (typeof h?.fd === 'number') return `${name} fd ${h.fd}`;
  return name;
}

module.exports = SummaryReporter;
