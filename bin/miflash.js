#!/usr/bin/env node
// Thin launcher: the CLI lives in dist/ (built by `npm run build`): the bundle
// (scripts/bundle.js, faster to start) when there is one, else tsc's output.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

// Node >= 22.1 keeps compiled code between runs (no such API in Node 20).
module.enableCompileCache?.();
const bundle = new URL('../dist/bundle/main.js', import.meta.url);
const entry = existsSync(fileURLToPath(bundle)) ? bundle : new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('miflash: not built yet; run `npm run build` first\n');
  process.exit(1);
}
await import(entry.href);
