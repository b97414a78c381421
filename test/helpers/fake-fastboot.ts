// Helpers for the ROM flashing tests: run a vendor flash_all.sh under a real
// shell with the fake `fastboot` (test/helpers/fake-fastboot-bin/fastboot)
// first on PATH, turn its argument log into the device commands a real
// fastboot would send, run `miflash` itself, and start the emulated device
// `miflash emulate` runs for a synthetic ROM.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';
import type { SyntheticRom } from '../../src/rom/synthetic.js';
import { Command } from 'commander';
import { registerEmulate } from '../../src/cli/commands/emulate.js';
import { toEmulatorOptions, type EmulateCliOptions } from '../../src/emulator/fastboot/cli.js';
import { startFastbootEmulator } from '../../src/emulator/fastboot/index.js';
import { REPO_ROOT } from './emulator.js';

export const FAKE_FASTBOOT_DIR = path.join(REPO_ROOT, 'test/helpers/fake-fastboot-bin');
/** What `$*` / `%*` carries in the vendor run: lines without it are not vendor content. */
const INJECTED = ['-s', 'FAKE-DEVICE'];

export interface ProcResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<ProcResult> {
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `sh SCRIPT -s FAKE-DEVICE` with the fake fastboot; returns each fastboot call's argv (injected args stripped; foreign calls dropped). */
export async function runVendorScript(
  romRoot: string,
  script: string,
  vars: Record<string, string>,
): Promise<{ code: number | null; calls: string[][]; foreign: string[][]; output: string }> {
  chmodSync(path.join(FAKE_FASTBOOT_DIR, 'fastboot'), 0o755); // in case a checkout dropped the exec bit
  const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-fakefb-'));
  const log = path.join(dir, 'calls.log');
  writeFileSync(log, '');
  try {
    const env = {
      ...process.env,
      PATH: `${FAKE_FASTBOOT_DIR}${path.delimiter}${process.env.PATH ?? ''}`,
      FAKE_FASTBOOT_LOG: log,
      FAKE_FASTBOOT_VARS: Object.entries(vars)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n'),
    };
    const r = await run('sh', [path.join(romRoot, script), ...INJECTED], { env, cwd: romRoot });
    const calls: string[][] = [];
    const foreign: string[][] = [];
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      if (line === '') continue;
      const argv = line.replace(/\t$/, '').split('\t');
      if (argv[0] === INJECTED[0] && argv[1] === INJECTED[1]) calls.push(argv.slice(INJECTED.length));
      else foreign.push(argv);
    }
    return { code: r.code, calls, foreign, output: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The commands a device receives for these fastboot calls, in the emulator's
 * log format (`download SIZE SHA256`, `flash:P`, `erase:P`, ...), getvars
 * left out. Files are hashed as the client would send them (vbmeta flags
 * patched at byte 123 for --disable-verity / --disable-verification).
 */
export function deviceCommandsFor(calls: string[][]): string[] {
  const out: string[] = [];
  for (const argv0 of calls) {
    let flags = 0;
    const argv = argv0.filter((a) => {
      if (a === '--disable-verity') flags |= 1;
      else if (a === '--disable-verification') flags |= 2;
      else return true;
      return false;
    });
    const [verb, ...rest] = argv;
    switch (verb) {
      case 'getvar':
        break;
      case 'flash': {
        const [part, file] = rest as [string, string];
        const data = readFileSync(file);
        if (flags && /^vbmeta(_a|_b)?$/.test(part)) data[123]! |= flags; // as AOSP flash_buf: these names only
        out.push(`download ${data.length} ${sha256(data)}`, `flash:${part}`);
        break;
      }
      case 'erase':
        out.push(`erase:${rest[0]}`);
        break;
      case 'set_active':
        out.push(`set_active:${rest[0]}`);
        break;
      case 'reboot':
        out.push(rest.length ? `reboot-${rest[0]}` : 'reboot');
        break;
      case 'reboot-bootloader':
        out.push('reboot-bootloader');
        break;
      case 'oem':
      case 'flashing':
        out.push([verb, ...rest].join(' '));
        break;
      default:
        throw new Error(`fake fastboot: no device mapping for ${JSON.stringify(argv0)}`);
    }
  }
  return out;
}

/** `node bin/miflash.js ARGS`. */
export function runMiflash(args: string[], opts: { timeoutMs?: number; input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<ProcResult> {
  return run(process.execPath, [path.join(REPO_ROOT, 'bin/miflash.js'), ...args], opts);
}

export interface RomEmulator {
  address: string;
  store: string;
  /** Every command the device received, in order. */
  log(): string[];
  /** Non-getvar commands. */
  writes(): string[];
  stop(): Promise<void>;
}

/**
 * The device `miflash emulate` would be with the ROM's partitions (and any extra flags: --var, --slots,
 * --product, --fail-on, ...), run in this process: the same flag parsing and device, without starting
 * a node process per emulator (the ROM tests start dozens; test/emulator/ covers the command itself).
 */
export async function emulatorForRom(rom: Pick<SyntheticRom, 'partitions' | 'product'>, extra: string[] = []): Promise<RomEmulator> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-romemu-'));
  const store = path.join(dir, 'store');
  const args = ['--store', store, '--product', rom.product, ...rom.partitions.flatMap((p) => ['--partition', `${p.name}=${p.size}`]), ...extra];
  const emu = await startFastbootEmulator('tcp:127.0.0.1:0', toEmulatorOptions(emulateFlags(args)));
  const log = () => [...emu.log];
  return {
    address: emu.address,
    store,
    log,
    writes: () => log().filter((l) => !l.startsWith('getvar:')),
    stop: async () => {
      await emu.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `miflash emulate` flags parsed by the command's own definition. */
function emulateFlags(args: string[]): EmulateCliOptions {
  const program = new Command().exitOverride();
  registerEmulate(program);
  let parsed: EmulateCliOptions | undefined;
  program.commands.find((c) => c.name() === 'emulate')!.action((o: EmulateCliOptions) => {
    parsed = o;
  });
  program.parse(['emulate', '--listen', 'tcp:127.0.0.1:0', ...args], { from: 'user' });
  return parsed!;
}

/** Replace a file in a synthetic ROM and keep md5sum.xml and crclist.txt consistent with it. */
export function replaceRomFile(root: string, file: string, data: Buffer): void {
  const abs = path.join(root, file);
  writeFileSync(abs, data);
  const crcPath = path.join(root, 'images/crclist.txt');
  const crcHex = `0x${(crc32(data) >>> 0).toString(16)}`;
  const parts = partitionsOf(root, file);
  const lines = readFileSync(crcPath, 'utf8').split('\n').map((l) => {
    const [p] = l.split(' ');
    return p && parts.has(p) ? `${p} ${crcHex}` : l;
  });
  writeFileSync(crcPath, lines.join('\n'));
  const md5Path = path.join(root, 'md5sum.xml');
  let xml = readFileSync(md5Path, 'utf8');
  for (const f of [path.basename(file), 'crclist.txt']) {
    const digest = createHash('md5').update(readFileSync(path.join(root, 'images', f))).digest('hex');
    xml = xml.replace(new RegExp(`(name="${f.replace(/[.]/g, '\\.')}">)[0-9a-f]+<`), `$1${digest}<`);
  }
  writeFileSync(md5Path, xml);
}

/** Partitions the ROM's scripts flash from `file` (by scanning the script text). */
function partitionsOf(root: string, file: string): Set<string> {
  const out = new Set<string>();
  const base = path.basename(file);
  for (const name of readdirSync(root).filter((n) => /^flash_all.*\.(sh|bat)$/.test(n))) {
    const p = path.join(root, name);
    for (const line of readFileSync(p, 'utf8').split('\n')) {
      const m = /\bflash\s+([A-Za-z0-9_.-]+)\s+.*?images[\\/]+([^\s"]+)/.exec(line.replace(/--disable-\S+/g, ''));
      if (m && m[2] === base) out.add(m[1]!);
    }
  }
  return out;
}
