#!/usr/bin/env node
// Bundles the CLI for start-up speed (npm run build runs it after tsc): one ES
// module per lazily loaded part instead of ~150 files, so Node's module loader
// resolves, reads and links a handful of files (measured with `npm run bench --
// startup`; see bench/README.md). Output: dist/bundle/main.js (bin/miflash.js
// loads it when present, else dist/cli/main.js) and dist/bundle/hash-worker.js
// (the worker hash-pool.ts starts, found next to the chunk that starts it).
// `usb` stays outside: it loads a native addon relative to its own package.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/main.ts', 'hash-worker': 'src/rom/hash-worker.ts' },
  bundle: true,
  splitting: true, // dynamic import()s stay lazy: `--version` loads no ROM, USB or UI code
  format: 'esm',
  platform: 'node',
  target: 'node20',
  outdir,
  external: ['usb'],
  // CommonJS dependencies (commander, yauzl) call require(); give ES modules one.
  banner: { js: "import { createRequire as __miflashRequire } from 'node:module'; const require = __miflashRequire(import.meta.url);" },
  logLevel: 'warning',
});
