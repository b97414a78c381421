import os from 'node:os';
import { defineConfig } from 'vitest/config';
import { peerTagDefinitions, probePeers, requiredPeersError } from './test/helpers/peers.js';

// Reference tools are looked up once, here: tests tagged with a missing one are
// skipped (see test/helpers/peers.ts); CI sets MIFLASH_REQUIRE_PEERS=1 so a
// missing one fails the run instead.
const peers = await probePeers();
if (process.env.MIFLASH_REQUIRE_PEERS === '1') {
  const problem = requiredPeersError(peers);
  if (problem) {
    const error = new Error(problem);
    error.stack = `Error: ${problem}`; // the message says it all; a config-loader stack would bury it
    throw error;
  }
}

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    setupFiles: ['test/setup.ts'],
    // One test file per core, not vitest's cores - 1: most tests wait on child processes (the CLI,
    // `miflash emulate`, reference tools), so a 2-core machine would otherwise run one file at a time.
    maxWorkers: os.availableParallelism(),
    tags: peerTagDefinitions(peers),
    reporters: ['default', './test/helpers/peers-reporter.ts'],
  },
});
