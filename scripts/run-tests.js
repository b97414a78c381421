#!/usr/bin/env node
// Runs the vitest suite and ends with the reference-tools line (which peers are
// missing, how many tests that skipped, the apt-get command: test/helpers/peers.ts)
// and one plain summary line ("N passed, N failed, N skipped") that CI and humans
// can read at a glance.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';

const report = '.cache/vitest-report.json';
const peers = '.cache/peers-summary.txt';
mkdirSync('.cache', { recursive: true });
rmSync(report, { force: true });
rmSync(peers, { force: true });
const vitest = new URL('../node_modules/vitest/vitest.mjs', import.meta.url).pathname;
const reporters = ['--reporter=default', '--reporter=json', '--reporter=./test/helpers/peers-reporter.ts'];
const args = [vitest, 'run', ...reporters, `--outputFile.json=${report}`, ...process.argv.slice(2)];
const run = spawnSync(process.execPath, args, { stdio: 'inherit', env: { ...process.env, MIFLASH_PEERS_SUMMARY: peers } });

try {
  process.stdout.write(readFileSync(peers, 'utf8'));
} catch {
  // vitest stopped before the end of the run (e.g. MIFLASH_REQUIRE_PEERS=1 with a tool missing: it said why).
}
let summary = 'tests: none run - vitest stopped before running them (its error is above)';
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  summary = `tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`;
} catch {
  // vitest crashed before writing its report; its exit code says so.
}
console.log(summary);
process.exit(run.status ?? 1);
