#!/usr/bin/env node
// Where a miflash run's peak RSS happens: runs `miflash ARGS` (with -s pointing at a
// fresh `miflash emulate --discard --no-hash` device when ARGS contain DEVICE),
// samples the child's VmRSS from /proc every 10 ms and prints the peak, the
// time it happened, and the last lines of miflash's output before it
// (MIFLASH_TRACE milestones and progress), so a budget overrun points at its phase.
// usage: node bench/rss-timeline.js [--partitions p=SIZE,...] -- ARGS...   (Linux only)
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmulator } from './lib/measure.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'miflash.js');
const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
if (sep < 0) {
  console.error('usage: node bench/rss-timeline.js [--partitions p=SIZE,...] [--emu-extra "ARGS"] -- MIFLASH-ARGS (DEVICE = the emulator address)');
  process.exit(2);
}
const opt = (name) => { const i = argv.indexOf(name); return i >= 0 && i < sep ? argv[i + 1] : undefined; };
const args = argv.slice(sep + 1);
let emu;
if (args.includes('DEVICE')) {
  emu = await startEmulator(BIN, {
    logFile: '/dev/null', maxDownloadSize: 512 << 20, hash: false,
    partitions: (opt('--partitions') ?? '').split(',').filter(Boolean), extra: (opt('--emu-extra') ?? '').split(' ').filter(Boolean),
  });
}
const t0 = performance.now();
const child = spawn(process.execPath, [BIN, ...args.map((a) => (a === 'DEVICE' ? emu.address : a))], {
  env: { ...process.env, MIFLASH_TRACE: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
});
const events = [];
const onText = (d) => { for (const l of d.toString().split(/\r|\n/)) if (l.trim()) events.push([performance.now() - t0, l.trim().slice(0, 140)]); };
child.stdout.on('data', onText);
child.stderr.on('data', onText);
const samples = [];
const timer = setInterval(() => {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
    if (m) samples.push([performance.now() - t0, Number(m[1])]);
  } catch { /* exited */ }
}, 10);
const code = await new Promise((r) => child.on('close', r));
clearInterval(timer);
await emu?.stop();
const peak = samples.reduce((a, b) => (b[1] > a[1] ? b : a), [0, 0]);
console.log(`exit ${code}, ${(performance.now() - t0).toFixed(0)} ms, ${samples.length} samples, peak VmRSS ${(peak[1] / 1024).toFixed(1)} MiB at ${(peak[0] / 1000).toFixed(2)} s`);
// RSS per second (max in each second), and what was printed around the peak.
const bySec = new Map();
for (const [t, kib] of samples) bySec.set(Math.floor(t / 1000), Math.max(bySec.get(Math.floor(t / 1000)) ?? 0, kib));
console.log('max MiB per second: ' + [...bySec].map(([s, k]) => `${s}:${(k / 1024).toFixed(0)}`).join(' '));
console.log('output before the peak:');
for (const [t, l] of events.filter(([t]) => t <= peak[0]).slice(-6)) console.log(`  ${(t / 1000).toFixed(2)} s  ${l}`);
