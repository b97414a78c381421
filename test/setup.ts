// Every test file gets its own verified-image cache (src/rom/digest-cache.ts), inherited by the
// miflash processes it starts: tests never read or write the user's ~/.cache/miflash.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { installPeerGuard } from './helpers/peer-guard.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'miflash-test-cache-'));
process.env.MIFLASH_CACHE_DIR = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Reference tools only through the registry (test/helpers/peers.ts): see peer-guard.ts.
installPeerGuard();
