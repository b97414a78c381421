// Reference tools nobody here wrote ("peers") that some tests use as oracles.
// vitest.config.ts probes them once, up front, in the main process: a test
// that needs a missing one is skipped (never left to time out), the run ends
// with one summary line (test/helpers/peers-reporter.ts), and with
// MIFLASH_REQUIRE_PEERS=1 (CI) a missing one fails the run before any test.
//
// To add a tool: one entry in PEERS, then mark the tests that need it with
// `needs('tool')` (describe or it options). Spawn it with `peerPath('tool')`.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export interface PeerSpec {
  /** What the tests use it for (shown when it is missing). */
  what: string;
  /** The Debian package that installs it. */
  debPackage: string;
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
  gawk: {
    what: 'GNU awk: oracle for the flash-script text tools',
    debPackage: 'gawk',
    check: { args: ['--version'], output: /^GNU Awk /m, expected: 'GNU Awk' },
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

function hiddenPeers(env: NodeJS.ProcessEnv = process.env): Set<string> {
  const names = (env.MIFLASH_PEERS_HIDE ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return new Set(names.includes('all') ? PEER_NAMES : names);
}

/**
 * Looks every peer up on the real PATH and runs its check. MIFLASH_PEERS_HIDE
 * (comma-separated names, or "all") makes listed peers count as missing, to
 * try the skip path on a machine that has them.
 */
export function probePeers(env: NodeJS.ProcessEnv = process.env): PeerProbe {
  const hidden = hiddenPeers(env);
  const probe = {} as PeerProbe;
  for (const name of PEER_NAMES) {
    const spec: PeerSpec = PEERS[name];
    if (hidden.has(name)) {
      probe[name] = { missing: 'hidden by MIFLASH_PEERS_HIDE' };
      continue;
    }
    const found = findOnPath(name, env.PATH);
    if (!found) {
      probe[name] = { missing: 'not on PATH' };
      continue;
    }
    const r = spawnSync(found, spec.check.args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
    probe[name] = spec.check.output.test(output)
      ? { path: found }
      : { missing: `${found} is not the expected tool (\`${[name, ...spec.check.args].join(' ')}\` should print ${spec.check.expected}; got ${JSON.stringify(output.trim().split('\n')[0] ?? '')})` };
  }
  return probe;
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
  return { tags: names.map(peerTag) };
}

/** Absolute path of a peer on PATH. Call it inside tests or hooks marked with `needs(name)`. */
export function peerPath(name: PeerName): string {
  // Honour MIFLASH_PEERS_HIDE here too, so hiding a peer exposes a test that uses it without needs().
  const found = hiddenPeers().has(name) ? null : findOnPath(name);
  if (!found) throw new Error(`${name} is missing: mark the test that runs it with needs('${name}')`);
  return found;
}
