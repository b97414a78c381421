// Ends the run with one line about the reference tools (test/helpers/peers.ts):
// which are missing, how many tests were skipped for them, and how to install them.
// Under `npm test`, scripts/run-tests.js prints the line itself (after vitest's
// other reporters have finished) from the file named by MIFLASH_PEERS_SUMMARY.
import { writeFileSync } from 'node:fs';
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { aptGetCommand, PEER_NAMES, peerTag, type PeerName } from './peers.js';

export default class PeersReporter implements Reporter {
  private missing: PeerName[] = [];

  onInit(vitest: Vitest): void {
    // The config skips the tag of every missing peer; that is the one probe of this run.
    const skipped = new Set(vitest.config.tags.filter((t) => t.skip).map((t) => t.name));
    this.missing = PEER_NAMES.filter((n) => skipped.has(peerTag(n)));
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const line = this.summary(modules);
    if (process.env.MIFLASH_PEERS_SUMMARY) writeFileSync(process.env.MIFLASH_PEERS_SUMMARY, `${line}\n`);
    else console.log(line);
  }

  private summary(modules: ReadonlyArray<TestModule>): string {
    if (this.missing.length === 0) return `reference tools: all found (${PEER_NAMES.join(', ')}); no test skipped for a missing one`;
    let skipped = 0;
    const byPeer = new Map<PeerName, number>(this.missing.map((n) => [n, 0]));
    for (const m of modules) {
      for (const t of m.children.allTests('skipped')) {
        const because = this.missing.filter((n) => t.tags.includes(peerTag(n)));
        if (because.length > 0) skipped++;
        for (const n of because) byPeer.set(n, byPeer.get(n)! + 1);
      }
    }
    const list = [...byPeer].map(([n, k]) => `${n} (${k})`).join(', ');
    return `reference tools: ${skipped} test${skipped === 1 ? '' : 's'} skipped, missing ${list} - install with: ${aptGetCommand(this.missing)}`;
  }
}
