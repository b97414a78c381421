// `npm run bench -- rom`: a whole Xiaomi-shaped ROM (bench/lib/rom.js), from
// the .tgz to the last reboot, miflash against the vendor way (GNU tar, the
// vendor flash_all.sh under sh, the AOSP fastboot client), on the same emulated
// device (`miflash emulate --discard --no-hash`, so the device is not the
// bottleneck), same ROM, same machine state, alternating A B / B A, best of N.
// Rows: (a) .tgz to device, (b) extracted folder to device, (c) extraction
// alone, (d) preflight checks alone; miflash cold (no cache) and, where it has
// one, warm (its extraction / verified-image cache from the previous run kept).
// See bench/README.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freeBytes } from './lib/images.js';
import { downloadsOf, measure, startEmulator } from './lib/measure.js';
import { ensureRom, ROM_PIECE_LIMIT, ROM_PRODUCT } from './lib/rom.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'miflash.js');
const RSS_TARGET_MIB = 96;

const USAGE = `usage: npm run bench -- rom [options]     (node bench/run.js rom [options])
  --only LIST     rows: a (tgz to device), b (folder to device), c (extraction), d (preflight); default all
  --runs N        timed runs per client per row, best is reported (default 3)
  --scale F       shrink every image by F (0.125 = quick smoke run); the ROM is cached per scale
  --no-identity   skip the untimed payload-identity runs against a hashing device
  --note TEXT     free text stored in the JSON
  --keep          keep emulator logs in bench/work/runs/
  --check         exit 1 when miflash misses a target
  -h, --help`;

function options(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' }, runs: { type: 'string', default: '3' }, scale: { type: 'string', default: '1' },
      'no-identity': { type: 'boolean' }, note: { type: 'string' }, keep: { type: 'boolean' }, check: { type: 'boolean' },
      work: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { console.log(USAGE); process.exit(0); }
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 1)) throw new Error(`--scale must be in (0, 1], got ${values.scale}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : ['a', 'b', 'c', 'd'];
  for (const r of only) if (!['a', 'b', 'c', 'd'].includes(r)) throw new Error(`unknown row "${r}" (a, b, c, d)`);
  return { only, runs, scale, identity: !values['no-identity'], note: values.note ?? null, keep: !!values.keep, check: !!values.check,
    work: values.work ?? join(ROOT, 'bench', 'work') };
}

const log = (msg) => console.error(`[bench rom] ${msg}`);
const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(); } catch { return null; } };
const have = (tool) => sh('sh', ['-c', `command -v ${tool}`]) !== null;
const round = (x, d) => (x === null || x === undefined ? null : Math.round(x * 10 ** d) / 10 ** d);

/** Drops what earlier runs left dirty in the page cache, so no run pays for another's writeback. */
function settle() {
  spawnSync('sync');
}

/** Reads a file once so every measured run finds it in the page cache. */
function warm(path) {
  spawnSync('sh', ['-c', 'cat "$1" > /dev/null', 'sh', path]);
}

/**
 * One run: `prepare()` (untimed: clean outputs / caches), an emulator when the row needs a device,
 * the measured command, then its check. Returns the run record.
 */
async function oneRun(spec, ctx, { hash = false, tag }) {
  spec.prepare?.();
  settle();
  let emu;
  const logFile = join(ctx.runDir, `${tag}.log`);
  rmSync(logFile, { force: true });
  if (spec.device) {
    emu = await startEmulator(BIN, {
      logFile, maxDownloadSize: ROM_PIECE_LIMIT, hash,
      partitions: ctx.rom.partitions.map((p) => `${p.name}=${p.bytes}`),
      extra: ['--slots', 'a,b', '--product', ROM_PRODUCT],
    });
  }
  let r;
  let emuCpu = null;
  try {
    const [cmd, args, env] = spec.command(emu?.address);
    const cpu0 = emu?.cpuSeconds() ?? null;
    r = await measure(cmd, args, { timeoutMs: Math.max(300_000, 1_800_000 * ctx.scale), cwd: ROOT, env: { ...process.env, ...env } });
    const cpu1 = emu?.cpuSeconds() ?? null;
    if (cpu0 !== null && cpu1 !== null) emuCpu = round(cpu1 - cpu0, 2);
  } finally {
    await emu?.stop();
  }
  const logText = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  if (!ctx.keep) rmSync(logFile, { force: true });
  const downloads = downloadsOf(logText);
  const lines = logText.split('\n').filter(Boolean);
  let why = r.exit !== 0 ? `exit ${r.exit}` : null;
  if (!why && spec.device && spec.expectDownloads && downloads.length === 0) why = 'exit 0 but the device received no download';
  if (!why && spec.check) why = spec.check();
  const run = {
    ok: why === null, wallS: round(r.wallS, 3), cpuS: r.cpuS, rssKiB: r.rssKiB, exit: r.exit, load1: round(os.loadavg()[0], 2),
    ...(spec.device ? { downloads: downloads.length, commands: lines.length, maxDownloadSizeQueries: lines.filter((l) => l === 'getvar:max-download-size').length, deviceCpuS: emuCpu } : {}),
  };
  if (why) run.error = `${why}\n${r.output}`;
  spec.cleanup?.();
  return { run, downloads };
}

const runText = (r) => `${r.wallS.toFixed(2)} s wall, ${r.cpuS ?? '?'} s CPU, ${r.rssKiB === null ? '?' : (r.rssKiB / 1024).toFixed(0)} MiB` +
  `${r.downloads !== undefined ? `, ${r.downloads} downloads, ${r.commands} commands` : ''}${r.ok ? '' : `, FAILED: ${r.error.split('\n').slice(0, 3).join(' | ')}`}`;

/**
 * A row: its sides run alternately (A B, B A, ...) `runs` times. A side may be `warm`: run right
 * after its cold twin without cleaning (its caches from that run kept), and compared to the same
 * reference. Returns the row record.
 */
async function row(id, title, sides, ctx) {
  const res = { id, title, sides: {} };
  for (const s of sides) res.sides[s.name] = { label: s.label, role: s.role, runs: [] };
  for (let i = 0; i < ctx.runs; i++) {
    const order = i % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order.filter((x) => !x.warmOf)) {
      const { run } = await oneRun(s, ctx, { tag: `${id}-${s.name}-${i + 1}` });
      res.sides[s.name].runs.push(run);
      log(`${id} ${s.name} run ${i + 1}: ${runText(run)}`);
      for (const w of sides.filter((x) => x.warmOf === s.name)) {
        const { run: wr } = await oneRun(w, ctx, { tag: `${id}-${w.name}-${i + 1}` });
        res.sides[w.name].runs.push(wr);
        log(`${id} ${w.name} run ${i + 1}: ${runText(wr)}`);
      }
      s.cleanup?.();
    }
  }
  for (const s of sides) {
    const side = res.sides[s.name];
    const ok = side.runs.filter((r) => r.ok);
    const best = ok.sort((x, y) => x.wallS - y.wallS)[0];
    side.bestWallS = best?.wallS ?? null;
    side.cpuS = best?.cpuS ?? null; // of the fastest run
    side.bestCpuS = ok.length ? Math.min(...ok.map((r) => r.cpuS ?? Infinity)) : null;
    side.maxRssKiB = ok.length ? Math.max(...ok.map((r) => r.rssKiB ?? 0)) : null;
    side.failures = side.runs.length - ok.length;
    if (best?.downloads !== undefined) Object.assign(side, { downloads: best.downloads, commands: best.commands, maxDownloadSizeQueries: best.maxDownloadSizeQueries });
  }
  return res;
}

async function identity(rowRes, sides, ctx) {
  const seqs = {};
  for (const s of sides) {
    const { run, downloads } = await oneRun(s, ctx, { hash: true, tag: `${rowRes.id}-${s.name}-identity` });
    log(`${rowRes.id} ${s.name} identity run (hashing device, untimed): ${runText(run)}`);
    seqs[s.name] = run.ok ? downloads : null;
  }
  const [x, y] = Object.values(seqs);
  rowRes.payloadsIdentical = x && y ? x.length === y.length && x.every((d, i) => d.size === y[i].size && d.sha256 === y[i].sha256) : null;
  rowRes.identityDownloads = x?.length ?? null;
}

function miflashCmd(args, env = {}) {
  return [process.execPath, [BIN, ...args], env];
}

async function main(argv) {
  const opts = options(argv);
  for (const tool of ['fastboot', 'tar', 'gzip', 'md5sum', '/usr/bin/time']) {
    if (!have(tool)) throw new Error(`${tool} not found (Debian: apt-get install fastboot tar gzip coreutils time)`);
  }
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('miflash is not built: run `npm run build` (npm run bench does)');
  const pigz = have('pigz');
  mkdirSync(opts.work, { recursive: true });
  const need = 8 * GiB * opts.scale + 2 * GiB;
  if (freeBytes(opts.work) < need) throw new Error(`need ~${(need / GiB).toFixed(1)} GiB free in ${opts.work}`);
  log(`scale ${opts.scale}, ${opts.runs} run(s) per side, ${(freeBytes(opts.work) / GiB).toFixed(1)} GiB free; making or reusing the ROM ...`);
  const rom = ensureRom(opts.work, opts.scale, { log, repoRoot: ROOT, countPieces });
  log(`ROM: ${relative(ROOT, rom.tgz)} (${(rom.stats.tgzBytes / MiB).toFixed(0)} MiB; ${rom.stats.images} images, ${(rom.stats.imageBytes / MiB).toFixed(0)} MiB of files, ${(rom.stats.dataBytes / MiB).toFixed(0)} MiB of data)`);
  const runDir = join(opts.work, 'runs');
  const out = join(opts.work, 'rom-out');
  const cacheDir = join(opts.work, 'rom-miflash-cache');
  mkdirSync(runDir, { recursive: true });
  const ctx = { rom, runDir, runs: opts.runs, scale: opts.scale, keep: opts.keep };
  const clean = () => { rmSync(out, { recursive: true, force: true }); rmSync(cacheDir, { recursive: true, force: true }); };
  const env = { MIFLASH_CACHE_DIR: cacheDir };
  const folder = rom.folder;
  const script = join(folder, 'flash_all.sh');
  const extractedScript = join(out, rom.name, 'flash_all.sh');
  warm(rom.tgz);
  spawnSync('sh', ['-c', `find "$1" -type f -exec cat {} + > /dev/null`, 'sh', folder]);
  // The md5sum.xml list in md5sum -c form: what a careful user runs before flashing by hand.
  const md5List = join(opts.work, 'rom-md5sum.txt');
  writeFileSync(md5List, rom.images.map((i) => `${i.md5}  images/${i.file}`).join('\n') + '\n');

  const startedAt = new Date();
  const facts = {
    nproc: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? null, memTotalMiB: Math.round(os.totalmem() / MiB), kernel: `${os.type()} ${os.release()}`,
    node: process.version, fastboot: sh('fastboot', ['--version'])?.split('\n')[0] ?? null, tar: sh('tar', ['--version'])?.split('\n')[0] ?? null,
    pigz: pigz ? sh('pigz', ['--version']) : null, miflashCommit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    nodeExtraCaCerts: process.env.NODE_EXTRA_CA_CERTS ?? null, loadavgStart: os.loadavg(), note: opts.note,
  };
  const rows = [];
  const extracted = () => (existsSync(extractedScript) ? null : `${extractedScript} missing after the run`);
  const refFlash = (scriptPath, pre = '') => (address) => ['sh', ['-c', `${pre}sh "$1" -s ${address}`, 'sh', scriptPath], {}];

  if (opts.only.includes('a')) {
    const sides = [
      { name: 'ref', role: 'ref', label: 'tar -xzf + flash_all.sh + AOSP fastboot', device: true, expectDownloads: true, prepare: clean, cleanup: clean,
        command: (a) => ['sh', ['-c', `mkdir -p "$2" && tar -xzf "$1" -C "$2" && sh "$3" -s ${a}`, 'sh', rom.tgz, out, extractedScript], {}] },
      { name: 'miflash', role: 'cold', label: 'miflash flash ROM.tgz --yes', device: true, expectDownloads: true, prepare: clean,
        command: (a) => miflashCmd(['-s', a, 'flash', rom.tgz, '--yes', '--cache', out], env) },
      { name: 'miflash-warm', role: 'warm', warmOf: 'miflash', label: 'same, again (extraction and verified-image cache kept)', device: true, expectDownloads: true,
        command: (a) => miflashCmd(['-s', a, 'flash', rom.tgz, '--yes', '--cache', out], env), cleanup: clean },
    ];
    rows.push(await row('a', '(a) .tgz to device', sides, ctx));
  }
  if (opts.only.includes('b')) {
    const sides = [
      { name: 'ref', role: 'ref', label: 'flash_all.sh + AOSP fastboot', device: true, expectDownloads: true, prepare: clean, command: refFlash(script) },
      // The same work as miflash does (every image checked first), the way a careful user would.
      { name: 'ref-checked', role: 'ref2', label: 'md5sum -c + flash_all.sh + AOSP fastboot', device: true, expectDownloads: true, prepare: clean,
        command: (a) => ['sh', ['-c', `cd "$1" && md5sum --quiet -c "$2" && sh "$3" -s ${a}`, 'sh', folder, md5List, script], {}] },
      { name: 'miflash', role: 'cold', label: 'miflash flash DIR --yes', device: true, expectDownloads: true, prepare: clean,
        command: (a) => miflashCmd(['-s', a, 'flash', folder, '--yes'], env) },
      { name: 'miflash-warm', role: 'warm', warmOf: 'miflash', label: 'same, again (verified-image cache kept)', device: true, expectDownloads: true,
        command: (a) => miflashCmd(['-s', a, 'flash', folder, '--yes'], env), cleanup: clean },
    ];
    const r = await row('b', '(b) folder to device', sides, ctx);
    if (opts.identity) await identity(r, [sides[0], { ...sides.find((x) => x.name === 'miflash'), prepare: clean }], ctx);
    rows.push(r);
  }
  if (opts.only.includes('c')) {
    const sides = [
      { name: 'ref', role: 'ref', label: 'tar -xzf', prepare: clean, check: extracted, cleanup: clean,
        command: () => ['sh', ['-c', 'mkdir -p "$2" && tar -xzf "$1" -C "$2"', 'sh', rom.tgz, out], {}] },
      ...(pigz ? [{ name: 'pigz', role: 'ref2', label: 'pigz -dc | tar -x', prepare: clean, check: extracted, cleanup: clean,
        command: () => ['sh', ['-c', 'mkdir -p "$2" && pigz -dc "$1" | tar -x -C "$2"', 'sh', rom.tgz, out], {}] }] : []),
      { name: 'miflash', role: 'cold', label: 'miflash plan ROM.tgz (extracts, checks the archive MD5, hashes every image)', prepare: clean, cleanup: clean,
        check: () => (existsSync(join(out, `${rom.name}_${rom.tgz.match(/_([0-9a-f]{10})\.tgz$/)[1]}.miflash`)) ? null : 'no extraction folder after the run'),
        command: () => miflashCmd(['plan', rom.tgz, '--cache', out, '--json'], env) },
    ];
    rows.push(await row('c', '(c) extraction alone', sides, ctx));
  }
  if (opts.only.includes('d')) {
    const sides = [
      { name: 'ref', role: 'ref', label: 'md5sum -c (the md5sum.xml list)', prepare: clean,
        command: () => ['sh', ['-c', 'cd "$1" && md5sum --quiet -c "$2"', 'sh', folder, md5List], {}] },
      { name: 'miflash', role: 'cold', label: 'miflash flash DIR --dry-run', device: true, prepare: clean,
        command: (a) => miflashCmd(['-s', a, 'flash', folder, '--dry-run', '--yes'], env) },
      { name: 'miflash-warm', role: 'warm', warmOf: 'miflash', label: 'same, again (verified-image cache kept)', device: true,
        command: (a) => miflashCmd(['-s', a, 'flash', folder, '--dry-run', '--yes'], env), cleanup: clean },
    ];
    rows.push(await row('d', '(d) preflight checks alone', sides, ctx));
  }
  clean();
  facts.loadavgEnd = os.loadavg();
  for (const r of rows) summarise(r);
  const text = table(rows);
  console.log(`\nwhole ROM (${(rom.stats.tgzBytes / MiB).toFixed(0)} MiB .tgz, ${(rom.stats.dataBytes / MiB).toFixed(0)} MiB of data): miflash vs the vendor way; best of ${opts.runs}; scale ${opts.scale}; ${facts.nproc} cores; node ${facts.node}`);
  console.log(text);
  console.log(`ratio = side wall / reference wall (lower is better); vs 2nd ref = the same against the row's second reference (pigz; md5sum -c before flashing);`);
  console.log(`CPU = user+sys of the fastest run (children included); RSS = the highest of all runs.`);
  console.log(`targets: miflash (cold and warm) ratio <= 1.00 on every row, peak RSS <= ${RSS_TARGET_MIB} MiB; payloads identical`);
  const report = { kind: 'rom', startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), options: { ...opts, work: relative(ROOT, opts.work) },
    machine: facts, rom: { tgz: relative(ROOT, rom.tgz), ...rom.stats, params: rom.params }, rows, table: text };
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `rom-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(resultsDir, 'rom-latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${relative(ROOT, file)} and bench/results/rom-latest.json`);
  const failed = rows.some((r) => Object.values(r.sides).some((s) => s.failures > 0));
  if (failed) log('some runs FAILED: see "error" in the JSON');
  const missed = rows.some((r) => Object.values(r.targets ?? {}).some((v) => v === false));
  return failed || (opts.check && missed) ? 1 : 0;
}

/** Downloads the AOSP client splits `path` into at `limit` (miflash's `sparse count`, proven against AOSP in the tests). */
function countPieces(path, limit) {
  const out = execFileSync(process.execPath, [BIN, 'sparse', 'count', path, '--limit', String(limit)], { encoding: 'utf8' }).trim();
  const n = Number(out.split(/\s+/).at(-1));
  if (!Number.isInteger(n) || n < 1) throw new Error(`unexpected output of miflash sparse count: ${out}`);
  return n;
}

function summarise(r) {
  const ref = r.sides.ref;
  const ref2 = Object.values(r.sides).find((s) => s.role === 'ref2');
  for (const s of Object.values(r.sides)) {
    if (s === ref) continue;
    if (ref.bestWallS && s.bestWallS) s.wallRatio = round(s.bestWallS / ref.bestWallS, 3);
    if (ref2 && s !== ref2 && ref2.bestWallS && s.bestWallS) s.wallRatio2 = round(s.bestWallS / ref2.bestWallS, 3);
  }
  r.targets = {};
  for (const [name, s] of Object.entries(r.sides)) {
    if (!name.startsWith('miflash')) continue;
    r.targets[`${name}.wall`] = s.wallRatio === undefined ? null : s.wallRatio <= 1.0;
    r.targets[`${name}.rss`] = s.maxRssKiB === null ? null : s.maxRssKiB / 1024 <= RSS_TARGET_MIB;
  }
  if (r.payloadsIdentical !== undefined) r.targets.payloads = r.payloadsIdentical;
}

const fmt = (x, d = 2) => (x === null || x === undefined ? '-' : x.toFixed(d));

function table(rows) {
  const head = ['row', 'side', 'wall s', 'ratio', 'vs 2nd ref', 'CPU s', 'RSS MiB', 'downloads', 'cmds', 'mds?', 'target'];
  const lines = [];
  for (const r of rows) {
    for (const [name, s] of Object.entries(r.sides)) {
      const t = name.startsWith('miflash') ? [r.targets[`${name}.wall`], r.targets[`${name}.rss`]] : [];
      lines.push([
        name === 'ref' ? r.title : '', `${s.label}`.slice(0, 60),
        s.runs.length && s.runs.every((x) => !x.ok) ? 'FAIL' : fmt(s.bestWallS), name === 'ref' ? '1.00' : fmt(s.wallRatio), fmt(s.wallRatio2),
        fmt(s.cpuS), s.maxRssKiB === null ? '-' : (s.maxRssKiB / 1024).toFixed(0),
        s.downloads === undefined ? '-' : String(s.downloads), s.commands === undefined ? '-' : String(s.commands),
        s.maxDownloadSizeQueries === undefined ? '-' : String(s.maxDownloadSizeQueries),
        t.length ? t.map((v) => (v === null ? '-' : v ? 'ok' : 'MISS')).join('/') : '',
      ]);
    }
    if (r.payloadsIdentical !== undefined) lines.push(['', `payloads identical (hashing device, ${r.identityDownloads ?? '?'} downloads)`, r.payloadsIdentical === null ? '-' : r.payloadsIdentical ? 'yes' : 'NO', '', '', '', '', '', '', '', '']);
  }
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const line = (cells) => cells.map((c, i) => (i <= 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...lines.map(line)].join('\n');
}

export function runRomBench(argv) {
  return main(argv).then((code) => code, (err) => { console.error(`bench rom: ${err.message}`); return 2; });
}
