#!/usr/bin/env node
// Bundles the CLI for start-up speed (npm run build runs it after tsc). Node 20
// spends most of a short run loading code: resolving and linking ES modules,
// compiling them, running their functions once. So:
//  - esbuild splits the CLI into chunks along its dynamic import()s (`--version`
//    loads no ROM, USB or UI code), then each chunk is turned into a plain
//    CommonJS module (dist/bundle/*.cjs, import() becoming require);
//  - bin/miflash.js loads them through node:vm with V8's code cache (Node 20
//    has no module compile cache), which also skips compiling every function
//    the previous run of the same command already compiled.
// Measured with `npm run bench -- startup` (bench/README.md).
// Output in dist/bundle/: the chunks, manifest.json (entry, build id, the
// libraries inside each chunk) and hash-worker.js (the worker hash-pool.ts
// starts, a standalone ES module found next to the chunk that starts it).
// `usb` stays outside: it loads a native addon relative to its own package.
import { build, transform } from 'esbuild';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

/**
 * zod's `z` namespace re-exports every locale (~350 KB, half of zod); miflash
 * uses English messages only (zod's default), so the bundle gets that one.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${sep}node_modules${sep}zod${sep}`) ? { path: join(dirname(args.importer), '..', 'locales', 'index.js'), namespace: 'zod-en' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'zod-en' }, (args) => ({ contents: "export { default as en } from './en.js';", resolveDir: dirname(args.path) }));
  },
};

/**
 * Identifies the code being bundled (every source file, miflash's version and
 * the locked dependencies): src/rom/plan-cache.ts keys cached plans with it, so
 * a plan parsed by one version of the parser is never served by another.
 */
function sourceId() {
  const h = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(join(root, dir), { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(rel);
      else if (e.isFile()) h.update(`${rel}\n`).update(readFileSync(join(root, rel))).update('\n');
    }
  };
  walk('src');
  for (const f of ['package.json', 'package-lock.json']) h.update(`${f}\n`).update(readFileSync(join(root, f))).update('\n');
  return h.digest('hex').slice(0, 16);
}

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  external: ['usb'],
  // No comments (some hold non-ASCII text, which makes V8 keep a whole chunk as a
  // two-byte string) and less source to read and compile; names are kept for stack traces.
  minifyWhitespace: true,
  minifySyntax: true,
  charset: 'ascii',
  plugins: [zodEnglishOnly],
  define: { __MIFLASH_SOURCE_ID__: JSON.stringify(sourceId()) },
  logLevel: 'warning',
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const esm = await build({ ...common, entryPoints: { main: 'src/cli/main.ts' }, splitting: true, format: 'esm', outdir, write: false, metafile: true });
const chunks = {};
const graph = new Map();
// Names the code cache (bin/miflash.js): any change to any chunk's bytes makes a new id.
const buildId = createHash('sha256');
for (const file of esm.outputFiles) {
  const name = basename(file.path).replace(/\.js$/, '.cjs');
  const { code } = await transform(file.text, {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // import() of a chunk or a built-in becomes require(): the loader serves both.
    supported: { 'dynamic-import': false },
    define: { 'import.meta.url': '__miflashModuleUrl' },
    minifyWhitespace: true,
    minifySyntax: true,
    charset: 'ascii',
    logLevel: 'warning',
  });
  const deps = [...code.matchAll(/require\("\.\/([^"]+)\.js"\)/g)].map((m) => `${m[1]}.cjs`);
  const url = code.includes('__miflashModuleUrl') ? 'const __miflashModuleUrl=require("node:url").pathToFileURL(__filename).href;' : '';
  const text = `"use strict";${url}${code.replace(/require\("\.\/([^"]+)\.js"\)/g, 'require("./$1.cjs")')}`;
  writeFileSync(join(outdir, name), text);
  buildId.update(`${name}\n${text}\n`);
  graph.set(name, deps);
  const meta = esm.metafile.outputs[relative(root, file.path)];
  const libs = new Set(Object.keys(meta?.inputs ?? {}).flatMap((i) => i.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//)?.[1] ?? []));
  chunks[name] = [...libs].sort();
}
assertAcyclic(graph);

// The hash worker runs in its own thread, loaded by Node itself: one standalone ES module.
await build({ ...common, entryPoints: { 'hash-worker': 'src/rom/hash-worker.ts' }, format: 'esm', outdir });

writeFileSync(join(outdir, 'manifest.json'), JSON.stringify({ entry: 'main.cjs', buildId: buildId.digest('hex').slice(0, 16), chunks }, null, 1) + '\n');

/** CommonJS require() cycles would hand out half-built exports (ES modules tolerate them): refuse. */
function assertAcyclic(g) {
  const state = new Map();
  const visit = (n, path) => {
    if (state.get(n) === 'done') return;
    if (state.get(n) === 'open') throw new Error(`bundle: chunk cycle ${[...path, n].join(' -> ')}`);
    state.set(n, 'open');
    for (const d of g.get(n) ?? []) visit(d, [...path, n]);
    state.set(n, 'done');
  };
  for (const n of g.keys()) visit(n, []);
}
