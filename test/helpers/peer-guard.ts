// Catches reference tools started behind the registry's back (test/helpers/peers.ts).
// Installed in every test worker by test/setup.ts: node:child_process's spawn and
// exec functions are wrapped so that starting a registered tool fails at once
//   - inside a test that is not marked needs(tool): without the tool that test
//     would fail or time out instead of being skipped, and CI could not tell;
//   - anywhere (hooks, helpers, code under test) when the tool is hidden with
//     MIFLASH_PEERS_HIDE: a run with MIFLASH_PEERS_HIDE=all finds every such path.
// A tool found by its name or its path counts (fastboot, /usr/bin/fastboot).
// Commands run inside a shell script are out of its sight; the static check in
// peers.test.ts covers test sources.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestRunner } from 'vitest';
import { hiddenPeers, PEER_NAMES, REGISTRY_PROBE, PEERS, peerTag, type PeerName, type PeerSpec } from './peers.js';

const byCommand = new Map<string, PeerName>(PEER_NAMES.map((n) => [(PEERS[n] as PeerSpec).command ?? n, n]));

/** The registered peer a spawn of `file` would start, if any. */
export function peerOfCommand(file: unknown): PeerName | undefined {
  return typeof file === 'string' ? byCommand.get(path.basename(file)) : undefined;
}

/** Why starting `file` now is refused, or null when it is fine. */
export function guardMessage(file: unknown, testTags: readonly string[] | undefined, hidden: ReadonlySet<string>): string | null {
  const peer = peerOfCommand(file);
  if (!peer) return null;
  if (hidden.has(peer)) return `${String(file)}: ${peer} is hidden by MIFLASH_PEERS_HIDE, yet something ran it: mark the test that does with needs('${peer}')`;
  if (testTags && !testTags.includes(peerTag(peer))) {
    return `${String(file)}: this test runs the reference tool ${peer} but is not marked needs('${peer}') (test/helpers/peers.ts), so it would fail instead of being skipped where ${peer} is missing`;
  }
  return null;
}

function check(file: unknown, args: unknown[]): void {
  if (args.some((a) => typeof a === 'object' && a !== null && REGISTRY_PROBE in a)) return; // the registry's own probe
  const test = TestRunner.getCurrentTest();
  const message = guardMessage(file, test ? (test.tags ?? []) : undefined, hiddenPeers());
  if (message) throw new Error(message);
}

type AnyFn = (...args: unknown[]) => unknown;

function guarded<F extends AnyFn>(original: F, commandOf: (args: unknown[]) => unknown): F {
  const wrapper = function (this: unknown, ...args: unknown[]) {
    check(commandOf(args), args);
    return original.apply(this, args);
  } as F;
  // promisify(execFile) resolves to { stdout, stderr } only through the original's custom form.
  const custom = (original as { [promisify.custom]?: AnyFn })[promisify.custom];
  if (custom) Object.defineProperty(wrapper, promisify.custom, { value: guarded(custom, commandOf) });
  return wrapper;
}

const firstArg = (args: unknown[]) => args[0];
/** exec / execSync take a shell command line: its first word is the program. */
const firstWord = (args: unknown[]) => (typeof args[0] === 'string' ? args[0].trim().split(/\s+/)[0] : undefined);

let installed = false;

export function installPeerGuard(): void {
  if (installed) return;
  installed = true;
  const cp = childProcess as unknown as Record<string, AnyFn>;
  for (const name of ['spawn', 'spawnSync', 'execFile', 'execFileSync'] as const) cp[name] = guarded(cp[name]!, firstArg);
  for (const name of ['exec', 'execSync'] as const) cp[name] = guarded(cp[name]!, firstWord);
  syncBuiltinESMExports(); // `import { spawn } from 'node:child_process'` sees the wrappers too
}
