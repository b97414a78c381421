// The shared hash pool on a machine with many cores: each worker costs ~10 MiB
// of RSS, so the pool must not start one per core (4 workers took the bench
// ROM's preflight to 114.6 MiB, past the 96 MiB budget). os.availableParallelism
// is mocked to 8 here; the pool still hashes several files at once.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { digestFile } from '../../src/rom/hash.js';
import { hashPool, MAX_HASH_WORKERS } from '../../src/rom/hash-pool.js';
import { randomBytes, tempDir } from '../sparse/helpers.js';

vi.mock('node:os', async (importOriginal) => {
  const os = await importOriginal<typeof import('node:os')>();
  const availableParallelism = () => 8;
  return { ...os, availableParallelism, default: { ...os.default, availableParallelism } };
});

const tmp = tempDir('miflash-hash-cores-');
afterAll(() => tmp.cleanup());

describe('hashPool() on an 8-core machine', () => {
  it(`starts at most ${MAX_HASH_WORKERS} workers (the RSS budget), still in parallel, with correct digests`, async () => {
    const { availableParallelism } = await import('node:os');
    expect(availableParallelism()).toBe(8); // the mock is in force
    expect(MAX_HASH_WORKERS).toBeLessThanOrEqual(2);
    const pool = hashPool();
    const paths = [0, 1, 2, 3, 4, 5].map((i) => {
      const p = join(tmp.dir, `f${i}.bin`);
      writeFileSync(p, randomBytes(2_000_000 + i, 40 + i));
      return p;
    });
    const jobs = paths.map((p) => pool.digestFile(p));
    // Every job is queued: the pool has started all the workers it ever will for them.
    expect(pool.workers).toBe(MAX_HASH_WORKERS);
    expect(await Promise.all(jobs)).toEqual(await Promise.all(paths.map((p) => digestFile(p))));
    pool.close();
  });
});
