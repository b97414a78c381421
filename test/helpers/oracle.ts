// The interpreter's oracle: run a vendor .sh under the real shell its shebang
// names (bash for #!/bin/bash, else Debian's sh = dash) with the logging fake
// `fastboot` first on PATH, answering from a model device exactly as the AOSP
// client prints; then walk miflash's plan for the same model device and
// compare the device operations.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stepLabel } from '../../src/plan/runner.js';
import { isDeviceOp, type FlashPlan } from '../../src/plan/schema.js';
import { simulatePlan, type ModelDevice } from '../../src/plan/simulate.js';
import { parseScript } from '../../src/rom/script/index.js';
import { interpretFastbootArgv } from '../../src/rom/script/interp/fastboot-argv.js';
import { shellOf } from '../../src/rom/script/sh/index.js';
import { toolBox } from '../../src/rom/script/tools/index.js';
import { FAKE_FASTBOOT_DIR } from './fake-fastboot.js';
import { peerPath } from './peers.js';

export interface OracleCase {
  device: ModelDevice;
  inputs?: string[];
  /** ROM side files (ROM-relative path -> text). */
  files?: Record<string, string>;
  /** Fail the Nth device operation of the plan (1-based)... */
  failAt?: number;
  /** ...which is the first operation of the fake fastboot's Nth non-read-only call (1-based). */
  failCall?: number;
}

/** One way to inject a failure: the plan's operation and the shell's call that carry it. */
export interface FailurePoint {
  failAt: number;
  failCall: number;
}

export interface Observed {
  /** Device operations, as plan labels. */
  ops: string[];
  /** 'exit N' (N = the shell's status), 'end' (ran to its end: status 0 or the last command's), or 'refuse: why'. */
  end: string;
}

/** A temporary ROM folder holding the script and its side files. */
export function romFolder(scriptPath: string, files: Record<string, string> = {}): { root: string; script: string; done(): void } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'miflash-oracle-'));
  const name = path.basename(scriptPath);
  copyFileSync(scriptPath, path.join(root, name));
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  return { root, script: name, done: () => rmSync(root, { recursive: true, force: true }) };
}

/** What the real shell makes the fake fastboot do. */
export function runUnderShell(root: string, script: string, c: OracleCase): Observed & { calls: string[][]; callOps: number[]; output: string } {
  chmodSync(path.join(FAKE_FASTBOOT_DIR, 'fastboot'), 0o755);
  const log = path.join(root, '.fastboot.log');
  writeFileSync(log, '');
  rmSync(`${log}.ops`, { force: true });
  const text = readFileSync(path.join(root, script), 'utf8');
  // Debian's sh is dash; run it by name so the test needs exactly the shell it models.
  const shell = peerPath(shellOf(text) === 'bash' ? 'bash' : 'dash');
  const env: NodeJS.ProcessEnv = {
    PATH: `${FAKE_FASTBOOT_DIR}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: root,
    LANG: 'C',
    FAKE_FASTBOOT_LOG: log,
    FAKE_FASTBOOT_VARS: Object.entries(c.device.vars)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n'),
    FAKE_FASTBOOT_INFO: (c.device.deviceInfo ?? []).join('\n'),
    FAKE_FASTBOOT_SERIAL: c.device.serial ?? 'MODEL0001',
    ...(c.failCall !== undefined ? { FAKE_FASTBOOT_FAIL_AT: String(c.failCall) } : {}),
  };
  const input = (c.inputs ?? []).map((l) => `${l}\n`).join('');
  const r = spawnSync(shell, [path.join(root, script)], { cwd: root, env, input, encoding: 'utf8', timeout: 30_000 });
  const calls = readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/\t$/, '').split('\t'));
  const ops: string[] = [];
  const callOps: number[] = [];
  for (const argv of calls) {
    const m = interpretFastbootArgv(argv, (arg) => {
      const abs = path.resolve(root, arg);
      const rel = path.relative(root, abs);
      return rel.startsWith('..') ? { ok: false, why: 'outside' } : { ok: true, file: rel.split(path.sep).join('/') };
    });
    // The fake counts every call that is not read-only, as miflash's queries.
    if (m.kind === 'ops') {
      // The injected failure fails the call's first operation; the client does no more.
      const done = callOps.length + 1 === c.failCall ? m.ops.slice(0, 1) : m.ops;
      for (const op of done) ops.push(stepLabel({ ...op, line: 1, onFailure: 'abort' } as never));
      callOps.push(m.ops.length);
    } else if (m.kind === 'refuse') {
      ops.push(`UNINTERPRETABLE ${argv.join(' ')}`);
      callOps.push(1);
    }
  }
  return { ops, end: r.status === 0 ? 'end' : `exit ${r.status}`, calls, callOps, output: `${r.stdout}${r.stderr}` };
}

/**
 * Failures at the first, middle and last call of a run that failed nowhere. One
 * call may carry several operations (`--set-active=a reboot`): a failing call
 * fails its first, and the AOSP client stops there.
 */
export function failurePoints(callOps: readonly number[]): FailurePoint[] {
  const starts: FailurePoint[] = [];
  let op = 1;
  callOps.forEach((n, i) => {
    if (n > 0) starts.push({ failAt: op, failCall: i + 1 });
    op += n;
  });
  if (starts.length === 0) return [];
  const picks = [0, Math.floor((starts.length - 1) / 2), starts.length - 1];
  return [...new Set(picks)].map((i) => starts[i]!);
}

/** The plan miflash makes of the script in that folder. */
export function planIn(root: string, script: string, inputs: string[] = []): FlashPlan {
  const text = readFileSync(path.join(root, script), 'utf8');
  return parseScript(text, {
    file: script,
    dialect: 'sh',
    inputs,
    readRomText: (f) => (existsSync(path.join(root, f)) ? readFileSync(path.join(root, f), 'utf8') : undefined),
  });
}

/** What the plan does for that model device (device operations assumed to succeed unless failAt). */
export function walkPlan(plan: FlashPlan, root: string, c: OracleCase): Observed {
  const sim = simulatePlan(plan.steps, c.device, toolBox, (f) => existsSync(path.join(root, f)));
  const ran = sim.ran.filter(isDeviceOp);
  const ops = ran.map(stepLabel);
  if (c.failAt !== undefined && c.failAt <= ops.length) {
    // The failed operation's policy decides what follows.
    const failed = ran[c.failAt - 1]!;
    if (failed.onFailure === 'abort' && !failed.vendorUnchecked) return { ops: ops.slice(0, c.failAt), end: 'abort' };
  }
  const s = sim.stop;
  if (!s) return { ops, end: 'end' };
  if (s.kind === 'exit') return { ops, end: s.status === 0 ? 'end' : `exit ${s.status}` };
  return { ops, end: `refuse: ${s.kind === 'gate.unknown' ? s.reason : s.kind}` };
}

// ---- model devices (shared by the shell oracle and the .bat twin test) ----

const ABSENT = Symbol('absent');
type Candidate = string | typeof ABSENT;

function candidates(name: string, product: string): Candidate[] {
  if (name === 'product') return [product, 'otherdev'];
  if (name === 'anti' || name === 'rollback_ver') return ['1', '9', ABSENT];
  if (name === 'crc') return ['1', '0', ABSENT];
  if (name.startsWith('partition-type:')) return ['raw', 'ext4', ABSENT];
  if (name === 'secure' || name === 'unlocked' || name === 'is-userspace') return ['yes', 'no'];
  if (/hw|revision/i.test(name)) return ['5', '1', ABSENT];
  if (/patch|spl/i.test(name)) return ['2024-01-05', '2025-12-01', ABSENT];
  return ['1', '0', ABSENT];
}

/** The product a script checks for (its first `product: NAME` pattern). */
export function productOf(text: string): string {
  const m = /product: \*?([A-Za-z0-9_-]+)/.exec(text) ?? /grep -q "([A-Za-z0-9_-]+)"/.exec(text);
  return m?.[1] ?? 'generic';
}

/** The base device passes every check; each variant changes one answer. */
export function devices(vars: string[], product: string, deviceInfo: boolean): ModelDevice[] {
  const info = ['Device unlocked: true', 'Device critical unlocked: true'];
  const base: Record<string, string> = {};
  for (const v of vars) {
    const c = candidates(v, product)[0]!;
    if (c !== ABSENT) base[v] = c;
  }
  const out: ModelDevice[] = [{ vars: base, deviceInfo: info }];
  for (const v of vars) {
    for (const c of candidates(v, product).slice(1)) {
      const vs = { ...base };
      if (c === ABSENT) delete vs[v];
      else vs[v] = c;
      out.push({ vars: vs, deviceInfo: info });
    }
  }
  if (deviceInfo) out.push({ vars: base, deviceInfo: ['Device unlocked: false', 'Device critical unlocked: false'] });
  return out;
}
