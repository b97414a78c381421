#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (built by `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('miflash: not built yet; run `npm run build` first\n');
  process.exit(1);
}
await import(entry.href);
