// Reference tools nobody here wrote ("peers") that some tests use as oracles.
// vitest.config.ts probes them once, up front, in the main process: a test
// that needs a missing one is skipped (never left to time out), the run ends
// with one summary line (test/helpers/peers-reporter.ts), and with
// MIFLASH_REQUIRE_PEERS=1 (CI) a missing one fails the run before any test.
//
// To add a tool: one entry in PEERS (and its package in .ci/run's apt-get line),
// then mark the tests that need it with `needs('tool')` (describe or it
// options). Spawn it with `peerPath('tool')`. test/helpers/peer-guard.ts fails
// a test that starts a registered tool without needs(), and peers.test.ts
// scans test sources for tools reached any other way.
import { spawn, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export interface PeerSpec {
  /** What the tests use it for (shown when it is missing). */
  what: string;
  /** The Debian package that installs it. */
  debPackage: string;
  /** The executable, when it is not the entry's name (a package checked through one of its commands). */
  command?: string;
  /** An administration tool: also looked for in the sbin folders a non-root PATH often lacks (after PATH). */
  sbin?: true;
  /** A cheap run proving it is the tool the tests expect (not just a file of that name). */
  check: { args: string[]; output: RegExp; expected: string };
}

export const PEERS = {
  fastboot: {
    what: 'AOSP fastboot client: parity of the conversation and payloads',
    debPackage: 'fastboot',
    // The parity tests pin v29's behaviour (Debian's package), including its quirks.
    check: { args: ['--version'], output: /^fastboot version 29\./m, expected: 'fastboot version 29.x (Debian package fastboot)' },
  },
  img2simg: {
    what: "libsparse's raw-to-sparse converter: byte-identical sparse output",
    debPackage: 'android-sdk-libsparse-utils',
    check: { args: [], output: /Usage: img2simg /, expected: 'its usage line' },
  },
  simg2img: {
    what: "libsparse's sparse-to-raw converter: expanded images",
    debPackage: 'android-sdk-libsparse-utils',
    check: { args: [], output: /Usage: simg2img /, expected: 'its usage line' },
  },
  simg2simg: {
    what: "libsparse's resparser: byte-identical split pieces",
    debPackage: 'android-sdk-libsparse-utils',
    check: { args: [], output: /Usage: simg2simg /, expected: 'its usage line' },
  },
  mkbootimg: {
    what: "AOSP's boot image packer: byte-identical boot images",
    debPackage: 'mkbootimg',
    check: { args: ['--help'], output: /usage: mkbootimg /, expected: 'its usage line' },
  },
  mke2fs: {
    what: 'e2fsprogs ext4 maker: host-side format and -w',
    debPackage: 'e2fsprogs',
    sbin: true,
    check: { args: ['-V'], output: /^mke2fs 1\./m, expected: 'mke2fs 1.x' },
  },
  e2fsck: {
    what: 'e2fsprogs checker: the ext4 filesystems miflash makes are consistent',
    debPackage: 'e2fsprogs',
    sbin: true,
    check: { args: ['-V'], output: /^e2fsck 1\./m, expected: 'e2fsck 1.x' },
  },
  'mkfs.f2fs': {
    what: 'f2fs-tools maker: host-side format and -w',
    debPackage: 'f2fs-tools',
    sbin: true,
    check: { args: ['-V'], output: /^mkfs\.f2fs 1\./m, expected: 'mkfs.f2fs 1.x' },
  },
  'fsck.f2fs': {
    what: 'f2fs-tools checker: the f2fs filesystems miflash makes are consistent',
    debPackage: 'f2fs-tools',
    sbin: true,
    check: { args: ['-V'], output: /^fsck\.f2fs 1\./m, expected: 'fsck.f2fs 1.x' },
  },
  gawk: {
    what: 'GNU awk: oracle for the flash-script text tools',
    debPackage: 'gawk',
    check: { args: ['--version'], output: /^GNU Awk /m, expected: 'GNU Awk' },
  },
  sed: {
    what: 'GNU sed: oracle for the flash-script text tools',
    debPackage: 'sed',
    check: { args: ['--version'], output: /^\S*sed \(GNU sed\) /m, expected: 'sed (GNU sed)' }, // it prints the path it was run by
  },
  grep: {
    what: 'GNU grep: oracle for the flash-script text tools',
    debPackage: 'grep',
    check: { args: ['--version'], output: /^grep \(GNU grep\) /m, expected: 'grep (GNU grep)' },
  },
  coreutils: {
    what: 'GNU coreutils (cut, tr, sort, date, expr, ...): oracles for the flash-script text tools',
    debPackage: 'coreutils',
    command: 'cut',
    check: { args: ['--version'], output: /\(GNU coreutils\) /, expected: 'cut (GNU coreutils)' },
  },
  dash: {
    what: "dash, Debian's /bin/sh: oracle for the shell builtins (test, printf)",
    debPackage: 'dash',
    // dash has no --version: its builtin printf's error wording is what the tests compare against.
    check: { args: ['-c', 'printf %d x'], output: /: 1: printf: x: expected numeric value$/m, expected: "dash's printf error 'dash: 1: printf: x: expected numeric value'" },
  },
  bash: {
    what: 'GNU bash: oracle for bash-dialect builtins; runs the oracle batches',
    debPackage: 'bash',
    check: { args: ['--version'], output: /^GNU bash, version /m, expected: 'GNU bash' },
  },
  script: {
    what: "util-linux's script: a pseudo-terminal for the terminal-output tests",
    debPackage: 'bsdutils',
    check: { args: ['--version'], output: /^script from util-linux /m, expected: 'script from util-linux' },
  },
} as const satisfies Record<string, PeerSpec>;

export type PeerName = keyof typeof PEERS;
export const PEER_NAMES = Object.keys(PEERS) as PeerName[];

/** Where each peer was found, or why it is unusable. JSON-serialisable (it travels to test workers). */
export type PeerProbe = Record<PeerName, { path: string } | { missing: string }>;

/** The first executable regular file NAME on PATH (what a shell's `command -v` finds). */
export function findOnPath(name: string, pathVar = process.env.PATH ?? ''): string | null {
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Folders searched after PATH for `sbin` tools (mke2fs & co. live there; a user's PATH often lacks them). */
export const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Where a peer's executable is: PATH first, then the sbin folders for administration tools. */
export function locatePeer(name: PeerName, pathVar = process.env.PATH ?? '', sbinDirs: readonly string[] = SBIN_DIRS): string | null {
  const spec: PeerSpec = PEERS[name];
  const dirs = spec.sbin ? [pathVar, ...sbinDirs].join(path.delimiter) : pathVar;
  return findOnPath(spec.command ?? name, dirs);
}

export function hiddenPeers(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const names = (env.MIFLASH_PEERS_HIDE ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return new Set(names.includes('all') ? PEER_NAMES : names);
}

/**
 * Looks every peer up on the real PATH and runs its check, all at once (the
 * slowest check, e.g. Python starting for mkbootimg, sets the time).
 * MIFLASH_PEERS_HIDE (comma-separated names, or "all") makes listed peers
 * count as missing, to try the skip path on a machine that has them.
 */
export async function probePeers(
  env: NodeJS.ProcessEnv = process.env,
  { sbinDirs = SBIN_DIRS, timeoutMs = 15_000 }: { sbinDirs?: readonly string[]; timeoutMs?: number } = {},
): Promise<PeerProbe> {
  const hidden = hiddenPeers(env);
  const results = await Promise.all(
    PEER_NAMES.map(async (name): Promise<PeerProbe[PeerName]> => {
      const spec: PeerSpec = PEERS[name];
      if (hidden.has(name)) return { missing: 'hidden by MIFLASH_PEERS_HIDE' };
      const found = locatePeer(name, env.PATH, sbinDirs);
      if (!found) return { missing: spec.sbin ? `not on PATH nor in ${sbinDirs.join(', ')}` : 'not on PATH' };
      const output = await checkOutput(found, spec.check.args, timeoutMs);
      if (spec.check.output.test(output)) return { path: found };
      const ran = [spec.command ?? name, ...spec.check.args].join(' ');
      return { missing: `${found} is not the expected tool (\`${ran}\` should print ${spec.check.expected}; got ${JSON.stringify(output.trim().split('\n')[0] ?? '')})` };
    }),
  );
  return Object.fromEntries(PEER_NAMES.map((n, i) => [n, results[i]!])) as PeerProbe;
}

/**
 * Marks the registry's own check runs in spawn options, so peer-guard.ts lets
 * them through (a global symbol: it survives vitest re-importing this module).
 */
export const REGISTRY_PROBE = Symbol.for('miflash.peers.probe');

/** stdout + stderr of one check run (killed on timeout: a hung tool is not the expected one). */
function checkOutput(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, [REGISTRY_PROBE]: true } as SpawnOptions);
    let output = '';
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', (e) => resolve(`${output}${e.message}`));
    child.once('close', () => resolve(output));
  });
}

export function missingPeers(probe: PeerProbe): PeerName[] {
  return PEER_NAMES.filter((n) => 'missing' in probe[n]);
}

/** The command that installs the given peers on Debian / Ubuntu. */
export function aptGetCommand(names: readonly PeerName[]): string {
  const packages = [...new Set(names.map((n) => PEERS[n].debPackage))];
  return `sudo apt-get install -y ${packages.join(' ')}`;
}

export const peerTag = (name: PeerName): string => `peer:${name}`;
/**
 * One vitest tag per peer; the tag of a missing peer skips every test carrying it.
 * A present peer's tag sets no `skip` at all: vitest merges the options of a
 * test's tags, and `skip: false` from one would undo `skip: true` from another.
 */
export function peerTagDefinitions(probe: PeerProbe): { name: string; description: string; skip?: true }[] {
  return PEER_NAMES.map((name) => {
    const p = probe[name];
    const description = `needs ${name} (${PEERS[name].what}; Debian package ${PEERS[name].debPackage})`;
    return 'missing' in p
      ? { name: peerTag(name), description: `${description} - missing: ${p.missing}`, skip: true }
      : { name: peerTag(name), description };
  });
}

/** The message a run with MIFLASH_REQUIRE_PEERS=1 stops with, or null when nothing is missing. */
export function requiredPeersError(probe: PeerProbe): string | null {
  const missing = missingPeers(probe);
  if (missing.length === 0) return null;
  return [
    `MIFLASH_REQUIRE_PEERS=1: ${missing.length} reference tool(s) missing, so the tests that compare against them cannot run:`,
    ...missing.map((n) => `  ${n}: ${(probe[n] as { missing: string }).missing}`),
    `Install: ${aptGetCommand(missing)}`,
  ].join('\n');
}

/** Test options marking a describe/it as needing these peers: `describe('…', needs('fastboot'), () => …)`. */
export function needs(...names: PeerName[]): { tags: string[] } {
  return { tags: [...new Set(names)].map(peerTag) };
}

/** Absolute path of a peer on PATH. Call it inside tests or hooks marked with `needs(name)`. */
export function peerPath(name: PeerName): string {
  // Honour MIFLASH_PEERS_HIDE here too, so hiding a peer exposes a test that uses it without needs().
  const found = hiddenPeers().has(name) ? null : locatePeer(name);
  if (!found) throw new Error(`${name} is missing: mark the test that runs it with needs('${name}')`);
  return found;
}
