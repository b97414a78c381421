// Process measurement: wall time (high-resolution, around the child) and peak
// RSS (GNU time's %M = ru_maxrss of the child, KiB), plus the emulated device
// each flash run talks to.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';
const live = new Set();
process.on('exit', () => { for (const c of live) try { c.kill('SIGKILL'); } catch { /* already gone */ } });

function tail(chunks, max = 4000) {
  const s = Buffer.concat(chunks).toString('utf8');
  return s.length > max ? s.slice(-max) : s;
}

/**
 * Runs `cmd args` under GNU time. Resolves { wallS, rssKiB, cpuS, exit, output }
 * (cpuS = user + system CPU seconds of the process and the children it waited
 * for; output = the last few KiB of stdout+stderr, for error reports).
 */
export function measure(cmd, args, { timeoutMs, cwd, env } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'miflash-bench-'));
  const timeFile = join(dir, 'time');
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ['-f', '%e %M %U %S', '-o', timeFile, cmd, ...args], { cwd, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const out = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    let timedOut = false;
    const timer = timeoutMs ? setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs) : null;
    child.on('error', (e) => { live.delete(child); reject(e); });
    child.on('close', (code, signal) => {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      live.delete(child);
      if (timer) clearTimeout(timer);
      let rssKiB = null;
      let cpuS = null;
      try {
        // GNU time prefixes "Command exited with non-zero status N" when the child fails.
        const line = readFileSync(timeFile, 'utf8').trim().split('\n').at(-1);
        const m = /^([\d.]+) (\d+) ([\d.]+) ([\d.]+)$/.exec(line ?? '');
        if (m) {
          rssKiB = Number(m[2]);
          cpuS = Math.round((Number(m[3]) + Number(m[4])) * 100) / 100;
        }
      } catch { /* time killed before writing */ }
      rmSync(dir, { recursive: true, force: true });
      const exit = timedOut ? `timeout after ${timeoutMs} ms` : signal ? `signal ${signal}` : code;
      resolve({ wallS, rssKiB, cpuS, exit, output: tail(out) });
    });
  });
}

/**
 * Starts `miflash emulate` in discard mode on an ephemeral loopback port and
 * waits for its "listening on" line. `hash: false` adds --no-hash (the device
 * then only reads and drops the data; timed runs). Returns
 * { address, cpuSeconds(), stop() }.
 */
export function startEmulator(miflashBin, { logFile, maxDownloadSize, partitions, hash = true, extra = [] }) {
  const args = [miflashBin, 'emulate', '--listen', 'tcp:127.0.0.1:0', '--discard', ...(hash ? [] : ['--no-hash']), '--log', logFile,
    '--max-download-size', String(maxDownloadSize), ...partitions.flatMap((p) => ['--partition', p]), ...extra];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const out = [];
    let buf = '';
    const fail = (why) => { clearTimeout(timer); child.kill('SIGKILL'); reject(new Error(`emulator: ${why}\n${tail(out)}`)); };
    const timer = setTimeout(() => fail('no "listening on" line within 20 s'), 20_000);
    child.stderr.on('data', (d) => out.push(d));
    child.on('error', (e) => fail(e.message));
    let listening = false;
    const exited = new Promise((r) => child.on('close', (code) => {
      live.delete(child);
      if (!listening) fail(`exited (${code}) before listening`);
      r();
    }));
    child.stdout.on('data', (d) => {
      out.push(d);
      buf += d.toString('utf8');
      const m = /listening on (tcp:[\d.]+:\d+)/.exec(buf);
      if (!m || listening) return;
      listening = true;
      clearTimeout(timer);
      resolve({
        address: m[1],
        cpuSeconds: () => cpuSecondsOf(child.pid),
        stop: async () => {
          const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
          child.kill('SIGTERM');
          await exited;
          clearTimeout(kill);
        },
      });
    });
  });
}

/** user+system CPU seconds a live process has used so far (Linux /proc; null elsewhere). */
export function cpuSecondsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

/** The `download SIZE SHA256` (or, from a --no-hash device, `download SIZE -`) lines of an emulator log, in order. */
export function downloadsOf(logText) {
  const out = [];
  for (const line of logText.split('\n')) {
    const m = /^download (\d+) ([0-9a-f]{64}|-)$/.exec(line.trim());
    if (m) out.push({ size: Number(m[1]), sha256: m[2] === '-' ? null : m[2] });
  }
  return out;
}

export async function sha256File(path) {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) h.update(chunk);
  return h.digest('hex');
}
