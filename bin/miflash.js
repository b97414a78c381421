#!/usr/bin/env node
'use strict';
// Launcher (CommonJS, see bin/package.json: an ES module entry costs Node 20 ~20 ms
// more to start). Runs the bundle (scripts/bundle.js, made by `npm run build`
// after tsc) when there is one at least as new as tsc's output in dist/cli/,
// else that output (a lone `tsc` run after a change must not leave the old bundle running).
//
// The bundle's chunks are CommonJS modules loaded here through node:vm with a
// V8 code cache: Node 20 has no compile cache of its own, and a short run spends
// much of its time compiling. The cache holds the bytecode of every function the
// last run of the same command compiled (so the next run skips compiling them),
// one file per command and build in $MIFLASH_CACHE_DIR (else
// $XDG_CACHE_HOME/miflash, else ~/.cache/miflash). V8 checks its version and flags
// before using one; the build id in the name ties it to these exact chunks. It is
// written at exit only when some chunk had none (or V8 refused it), by rename, so
// a reader never sees half a file. MIFLASH_CODE_CACHE=0 turns it off; deleting the
// files is always safe.
// The young generation stays at its first size (V8 doubles it, up to 2 x 16 MiB, when
// many objects survive a scavenge). Interpreting a vendor script (a first run, before
// the plan is cached) grew it to 16 MiB and peak RSS by ~12 MiB, on top of an archive's
// extraction: `miflash flash ROM.tgz` peaked at 113-115 MiB for a 96 MiB budget. V8 reads
// this factor each time it would grow; a command-line value below 2 would be raised to 2.
// A worker thread's start puts V8's flags back to their command-line values, so
// src/rom/hash-pool.ts sets these again once its worker runs (hence the global).
const V8_FLAGS = '--semi-space-growth-factor=1';
require('node:v8').setFlagsFromString(V8_FLAGS);
globalThis[Symbol.for('miflash.v8Flags')] = V8_FLAGS;
const fs = require('node:fs');
const path = require('node:path');

const bundleDir = path.join(__dirname, '..', 'dist', 'bundle');
const trace = process.env.MIFLASH_TRACE === '1';
// Code cache file format: "MFC2", then per chunk: u16 name length, name, u32 data
// length, two u32 check words (checksum below), data.
const MAGIC = 'MFC2';

let manifest;
try {
  const file = path.join(bundleDir, 'manifest.json');
  const tscEntry = fs.statSync(path.join(__dirname, '..', 'dist', 'cli', 'main.js'), { throwIfNoEntry: false });
  if (!tscEntry || fs.statSync(file).mtimeMs >= tscEntry.mtimeMs) manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch {
  manifest = undefined;
}
if (manifest) runBundle(manifest);
else runUnbundled();

function runUnbundled() {
  const entry = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
  if (!fs.existsSync(entry)) {
    process.stderr.write('miflash: not built yet; run `npm run build` first\n');
    process.exit(1);
  }
  import(require('node:url').pathToFileURL(entry).href);
}

function runBundle({ entry, buildId }) {
  const vm = require('node:vm');
  const nodeRequire = require('node:module').createRequire(path.join(bundleDir, entry));
  const cache = codeCache(buildId);
  const modules = new Map();
  const requireChunk = (spec) => (spec.startsWith('./') ? load(spec.slice(2)) : nodeRequire(spec));
  requireChunk.resolve = nodeRequire.resolve;

  function load(name) {
    const done = modules.get(name);
    if (done) return done.exports;
    const file = path.join(bundleDir, name);
    const cachedData = cache.get(name);
    // The chunks are ASCII (scripts/bundle.js): latin1 reads them without UTF-8 decoding.
    const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${fs.readFileSync(file, 'latin1')}\n})`, {
      filename: file,
      ...(cachedData ? { cachedData } : {}),
    });
    cache.loaded(name, script, cachedData !== undefined && !script.cachedDataRejected);
    const module = { exports: {}, filename: file, id: file, loaded: false };
    modules.set(name, module);
    script.runInThisContext().call(module.exports, module.exports, requireChunk, module, file, bundleDir);
    module.loaded = true;
    return module.exports;
  }

  process.once('exit', () => cache.save());
  load(entry);
}

/** The code cache of this command: chunk name -> V8 cached data. Any failure costs only the compile. */
function codeCache(buildId) {
  const off = process.env.MIFLASH_CODE_CACHE === '0';
  const dir = process.env.MIFLASH_CACHE_DIR || path.join(process.env.XDG_CACHE_HOME || path.join(require('node:os').homedir(), '.cache'), 'miflash');
  const prefix = `code-${buildId}-`;
  const file = path.join(dir, `${prefix}${process.version}-${process.arch}-${commandKey(process.argv.slice(2))}.bin`);
  const entries = off ? new Map() : readEntries(file);
  const loaded = [];
  let stale = false;
  return {
    get: (name) => entries.get(name),
    loaded(name, script, accepted) {
      loaded.push([name, script]);
      if (!accepted) stale = true;
      if (trace) process.stderr.write(`miflash-trace-chunk ${name} ${accepted ? 'cached' : entries.has(name) ? 'rejected' : 'compiled'}\n`);
    },
    save() {
      if (off || !stale) return;
      try {
        for (const [name, script] of loaded) entries.set(name, script.createCachedData());
        fs.mkdirSync(dir, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        fs.writeFileSync(tmp, encode(entries));
        fs.renameSync(tmp, file);
        // Caches of other builds are dead weight.
        for (const f of fs.readdirSync(dir)) if (f.startsWith('code-') && !f.startsWith(prefix) && f.endsWith('.bin')) fs.rmSync(path.join(dir, f), { force: true });
      } catch {
        // read-only or full disk: the next run compiles again
      }
    },
  };
}

/**
 * Which command runs (`flash`, `plan`, `--version`...): each has its own cache, so
 * one command's cache does not leave another's functions uncompiled. The global
 * options that take a value are skipped with it.
 */
function commandKey(args) {
  const valued = new Set(['-s', '--serial', '-S', '--sparse-limit', '--timeout']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (valued.has(a)) i++;
    else if (a === '-V' || a === '--version') return 'version';
    else if (!a.startsWith('-')) return /^[a-z][a-z-]{0,30}$/.test(a) ? a : 'other';
  }
  return 'none';
}

function readEntries(file) {
  const entries = new Map();
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch {
    return entries;
  }
  if (buf.toString('latin1', 0, 4) !== MAGIC) return entries;
  for (let at = 4; at + 14 <= buf.length; ) {
    const nameLength = buf.readUInt16LE(at);
    const name = buf.toString('latin1', at + 2, at + 2 + nameLength);
    const length = buf.readUInt32LE(at + 2 + nameLength);
    const check = [buf.readUInt32LE(at + 6 + nameLength), buf.readUInt32LE(at + 10 + nameLength)];
    const start = at + 14 + nameLength;
    if (start + length > buf.length) return new Map(); // cut short: ignore it all
    const data = buf.subarray(start, start + length);
    // V8 checks its version and flags but (release builds) not the bytes: damaged data would crash it.
    const [a, b] = checksum(data);
    if (a === check[0] && b === check[1]) entries.set(name, data);
    at = start + length;
  }
  return entries;
}

function encode(entries) {
  const parts = [Buffer.from(MAGIC, 'latin1')];
  for (const [name, data] of entries) {
    const head = Buffer.alloc(14 + name.length);
    head.writeUInt16LE(name.length, 0);
    head.write(name, 2, 'latin1');
    head.writeUInt32LE(data.length, 2 + name.length);
    const [a, b] = checksum(data);
    head.writeUInt32LE(a, 6 + name.length);
    head.writeUInt32LE(b, 10 + name.length);
    parts.push(head, data);
  }
  return Buffer.concat(parts);
}

/**
 * Two 32-bit lanes over the data's 32-bit words (~1 ms for a cache; crypto or
 * zlib would cost more to load than that). Any one changed word changes lane a
 * (each step is a bijection of a); lane b mixes differently, for the rest.
 */
function checksum(data) {
  const words = data.length >>> 2;
  const aligned = (data.byteOffset & 3) === 0 ? data : Buffer.from(data);
  const view = new Int32Array(aligned.buffer, aligned.byteOffset, words);
  let a = 0x811c9dc5 ^ data.length;
  let b = 0x9e3779b9;
  for (let i = 0; i < words; i++) {
    const w = view[i];
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b + w, 0x5bd1e995) ^ (b >>> 13);
  }
  for (let i = words * 4; i < data.length; i++) {
    a = Math.imul(a ^ data[i], 0x01000193);
    b = Math.imul(b + data[i], 0x5bd1e995) ^ (b >>> 13);
  }
  return [a >>> 0, b >>> 0];
}
