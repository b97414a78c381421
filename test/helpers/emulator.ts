// Test helpers around the emulated fastboot device: in-process emulator, the
// real `miflash emulate` CLI as a child process, and the AOSP fastboot client.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Transport } from '../../src/transport/transport.js';
import { startFastbootEmulator, type FastbootEmulatorOptions, type RunningFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { peerPath, type PeerName } from './peers.js';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function tempDir(prefix = 'miflash-emu-'): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Run `fn` against an in-process emulator on an ephemeral loopback port. With
 * `store: undefined` a temporary store directory is created (and removed).
 */
export async function withEmulator<T>(
  opts: Omit<FastbootEmulatorOptions, 'store'> & { store?: string | null },
  fn: (emu: RunningFastbootEmulator & { store: string | null }) => Promise<T>,
): Promise<T> {
  const tmp = opts.store === undefined ? tempDir() : undefined;
  const store = opts.store === undefined ? path.join(tmp!.dir, 'store') : opts.store;
  const emu = await startFastbootEmulator('tcp:127.0.0.1:0', { ...opts, store });
  try {
    return await fn(Object.assign(emu, { store }));
  } finally {
    await emu.close();
    tmp?.cleanup();
  }
}

export interface CliEmulator {
  address: string;
  port: number;
  child: ChildProcess;
  stderr(): string;
  /** SIGTERM, then wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
}

/**
 * Spawn `node bin/miflash.js emulate --listen tcp:127.0.0.1:0 ARGS` and wait for its "listening on" line (or
 * its exit). The cap only turns a hung start into a message before the test's own timeout; it is generous
 * because a node start on a 2-core machine shared by several test runs takes seconds.
 */
export function spawnCliEmulator(args: string[], timeoutMs = 30_000): Promise<CliEmulator> {
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), 'emulate', '--listen', 'tcp:127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`emulator did not print "listening on" within ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    const early = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`emulator exited with ${code} before listening; stdout: ${out} stderr: ${err}`));
    };
    child.once('exit', early);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (tcp:127\.0\.0\.1:(\d+))\n/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      child.off('exit', early);
      resolve({
        address: m[1]!,
        port: Number(m[2]),
        child,
        stderr: () => err,
        stop: async () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}

export interface FastbootResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Run the AOSP client: `fastboot -s tcp:127.0.0.1:PORT ARGS`, killed after timeoutMs (tests using it need('fastboot')). */
export function runAospFastboot(port: number, args: string[], timeoutMs = 20_000): Promise<FastbootResult> {
  const child = spawn(peerPath('fastboot'), ['-s', `tcp:127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** Run a reference tool (img2simg, simg2img, …; tests using it need() it) and fail loudly if it fails. */
export function runTool(cmd: PeerName, args: string[], timeoutMs = 20_000): Promise<string> {
  const child = spawn(peerPath(cmd), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${out}`));
    });
  });
}

export interface RawReply {
  status: string;
  message: string;
  /** INFO/TEXT packets received before the final reply, verbatim. */
  before: string[];
}

/** Minimal host side over any Transport: send one command, read until OKAY/FAIL/DATA. */
export async function rawCommand(t: Transport, text: string, timeoutMs = 2000): Promise<RawReply> {
  await t.write(Buffer.from(text));
  const before: string[] = [];
  for (;;) {
    const r = (await t.read(256, { timeoutMs })).toString('latin1');
    const status = r.slice(0, 4);
    if (status === 'INFO' || status === 'TEXT') before.push(r);
    else return { status, message: r.slice(4), before };
  }
}

/** `node bin/miflash.js ARGS` with no ANDROID_SERIAL / FASTBOOT_DEVICE from the environment; killed after `timeoutMs`. */
export function runMiflash(args: string[], timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { ANDROID_SERIAL: _a, FASTBOOT_DEVICE: _f, ...env } = process.env;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => (clearTimeout(timer), resolve({ code, stdout, stderr })));
  });
}

/** `n` deterministic pseudo-random bytes (an LCG), the same for the same seed. */
export function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x * 1664525 + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
