// Running the real CLI (node bin/miflash.js, built by `npx tsc -p .`) and the
// emulated EDL device (`miflash edl emulate`) as child processes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, tempDir } from './helpers.js';

const BIN = path.join(REPO_ROOT, 'bin/miflash.js');

export function run(args: string[], opts: { input?: string; timeoutMs?: number } = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', input: opts.input ?? '', timeout: opts.timeoutMs ?? 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** run() without blocking: several CLI invocations can overlap. */
export function runAsync(args: string[], opts: { timeoutMs?: number } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 30_000 });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Temp folders and `edl emulate` processes, cleaned up through the test file's `cleanups`. */
export function cliFixtures(cleanups: (() => void | Promise<void>)[]) {
  const temp = (): string => {
    const t = tempDir();
    cleanups.push(t.cleanup);
    return t.dir;
  };
  return { temp, emulator: (args: string[]) => startEmulator(args, temp(), cleanups) };
}

/** `miflash edl emulate` on an ephemeral port, 2 LUNs unless `args` say otherwise, logging to DIR/emu.log. */
async function startEmulator(args: string[], dir: string, cleanups: (() => void | Promise<void>)[]): Promise<{ address: string; log: string; store: string; proc: ChildProcess }> {
  const store = path.join(dir, 'store');
  const log = path.join(dir, 'emu.log');
  writeFileSync(log, '');
  const proc = spawn(process.execPath, [BIN, 'edl', 'emulate', '--listen', 'tcp:127.0.0.1:0', '--store', store, ...(args.includes('--luns') ? [] : ['--luns', '2']), '--log', log, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stderr!.resume(); // never let a full pipe stall the device (its log goes to the file)
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  );
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`emulator did not start: ${out}`)), 10_000);
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (tcp:\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => reject(new Error(`emulator exited ${code}`)));
  });
  return { address, log, store, proc };
}

export function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

export const commandsIn = (log: string): string[] =>
  readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('command '))
    .map((l) => l.split(' ')[1]!);

