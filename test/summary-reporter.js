// Prints one plain closing line, "N passed, N failed[, N skipped]", which CI systems read.
//
// It also bounds the wait after the run. When the tests run in the main process (one worker, as on
// a 2-core CI machine), a socket or timer a failed test left open keeps Jest alive for ever ("Jest
// did not exit one second after the test run has completed"), and CI only stops at its time limit.
// So if the process is still here EXIT_AFTER_MS after the run, the handles still open are named and
// the process exits with status 1: failed tests already fail the run, and a leaked handle is a
// defect too.
'use strict';
const fs = require('fs');
const EXIT_AFTER_MS = 15000;

class SummaryReporter {
  onRunComplete(_contexts, r) {
    const skipped = r.numPendingTests + r.numTodoTests;
    process.stdout.write(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
    // unref: this timer never keeps the process alive; it fires only if something else does.
    setTimeout(() => {
      const open = [...(process._getActiveHandles?.() ?? []).map(describe).filter(Boolean),
        ...process.getActiveResourcesInfo().filter((x) => x !== 'TTYWrap' && x !== 'Timeout'), ...netlinkSockets()];
      process.stderr.write(`\njest: still running ${EXIT_AFTER_MS / 1000} s after the tests ended; ` +
        `open handles: ${open.join(', ') || 'none listed'}. Exiting with status 1.\n`);
      process.exit(1);
    }, EXIT_AFTER_MS).unref();
  }
}

// The addon's sockets keep the process alive but are no handle Node lists: name them by the
// kernel's view (/proc/self/fd inodes in /proc/net/netlink).
function netlinkSockets() {
  try {
    const mine = new Set();
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try { const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`)); if (m) mine.add(m[1]); } catch { /* closed meanwhile */ }
    }
    // sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode
    return fs.readFileSync('/proc/net/netlink', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 10 && mine.has(f[9]))
      .map((f) => `netlink socket protocol ${f[1]} port 0x${(Number(f[2]) >>> 0).toString(16).padStart(8, '0')}`);
  } catch {
    return [];
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
