#!/usr/bin/env node
// `npm run bench`: miflash against the AOSP fastboot client (and img2simg),
// same images, same emulated receiving device (TCP loopback). Timed runs:
// wall time and peak RSS per client, best of N, alternating the clients,
// against a device that drops the data unhashed (--discard --no-hash); then
// one untimed run per client against a hashing device, whose
// `download SIZE SHA256` log proves both sent the same payloads.
// See bench/README.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureImages, freeBytes } from './lib/images.js';
import { downloadsOf, measure, sha256File, startEmulator } from './lib/measure.js';

const MiB = 1 << 20;
const GiB = 1 << 30;
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'miflash.js');
const RSS_TARGET_MIB = 96;

const CASES = {
  a: { title: '(a) 512 MiB raw', image: 'a', partition: 'vendor' },
  b: { title: '(b) 3 GiB, 1 GiB data, sparse', image: 'bsparse', partition: 'system' },
  c: { title: '(c) 3 GiB, 1 GiB data, raw', image: 'craw', partition: 'system' },
  d: { title: '(d) 8 GiB super-like sparse', image: 'dsuper', partition: 'super' },
  'from-raw': { title: 'sparse from-raw vs img2simg, 3 GiB raw', image: 'craw' },
};
// Large enough for every image at full size (the device stores nothing).
const PARTITIONS = ['vendor=1G', 'system=4G', 'super=9G'];

const USAGE = `usage: node bench/run.js [options]   (npm run bench -- [options])
       node bench/run.js rom [options]   the whole-ROM benchmark (rom --help)
       node bench/run.js startup [options]   start-up times against bare node (startup --help)
  --only LIST           cases to run: a,b,c,d,from-raw (default: all)
  --runs N              runs per client per case; best is reported (default 3)
  --scale F             shrink every image size (and max-download-size) by F, e.g. 0.125 for a smoke run
  --clients LIST        aosp,miflash (default both; one alone = harness check, no ratios)
  --sparse-limit SIZE   pass -S SIZE to both clients (default: none, the device's max-download-size rules)
  --max-download-size SIZE  emulator's max-download-size (default 512M x scale)
  --note TEXT           free text stored in the JSON (e.g. machine load)
  --keep                keep emulator logs and from-raw outputs in bench/work/runs/
  --check               exit 1 when a target is missed
  --profile             after the measured runs, one extra miflash run per case under node --cpu-prof
                        (profiles in bench/results/profiles/; open in Chrome DevTools or speedscope)
  --clean               delete bench/work/ (cached images) and exit
  -h, --help`;

function parseSize(text) {
  const m = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(String(text).trim());
  if (!m) throw new Error(`bad size "${text}": expected e.g. 512M, 1G, 4096`);
  return Math.round(Number(m[1]) * { '': 1, K: 1024, M: MiB, G: GiB }[m[2].toUpperCase()]);
}

function options() {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' }, runs: { type: 'string', default: '3' }, scale: { type: 'string', default: '1' },
      clients: { type: 'string', default: 'aosp,miflash' }, 'sparse-limit': { type: 'string' },
      'max-download-size': { type: 'string' }, note: { type: 'string' }, keep: { type: 'boolean' },
      check: { type: 'boolean' }, profile: { type: 'boolean' }, clean: { type: 'boolean' }, work: { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { console.log(USAGE); process.exit(0); }
  const scale = Number(values.scale);
  if (!(scale > 0 && scale <= 1)) throw new Error(`--scale must be in (0, 1], got ${values.scale}`);
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(CASES);
  for (const c of only) if (!CASES[c]) throw new Error(`unknown case "${c}" (known: ${Object.keys(CASES).join(', ')})`);
  const clients = values.clients.split(',').map((s) => s.trim());
  for (const c of clients) if (c !== 'aosp' && c !== 'miflash') throw new Error(`unknown client "${c}" (aosp, miflash)`);
  const mds = values['max-download-size'] ? parseSize(values['max-download-size']) : Math.round((512 * MiB * scale) / 4096) * 4096;
  return {
    only, runs, scale, clients, keep: !!values.keep, check: !!values.check, profile: !!values.profile, clean: !!values.clean, note: values.note ?? null,
    sparseLimit: values['sparse-limit'] ?? null, maxDownloadSize: mds,
    work: values.work ?? join(ROOT, 'bench', 'work'),
  };
}

const log = (msg) => console.error(`[bench] ${msg}`);
const sh = (cmd, args) => { try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim(); } catch { return null; } };

function machine(note) {
  const fbv = sh('fastboot', ['--version']);
  return {
    nproc: os.availableParallelism(),
    cpu: os.cpus()[0]?.model ?? null,
    memTotalMiB: Math.round(os.totalmem() / MiB),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    fastboot: fbv ? fbv.split('\n')[0] : null,
    img2simg: sh('sh', ['-c', 'command -v img2simg']),
    miflashCommit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    loadavgStart: os.loadavg(),
    note,
  };
}

/** Read a file once so the first measured run does not pay for cold disk. */
function warm(path) {
  spawnSync('sh', ['-c', `cat "$1" > /dev/null`, 'sh', path]);
}

const best = (runs, key) => {
  const ok = runs.filter((r) => r.ok && r[key] !== null);
  return ok.length ? Math.min(...ok.map((r) => r[key])) : null;
};
const sameDownloads = (x, y) => x.length === y.length && x.every((d, i) => d.size === y[i].size && d.sha256 === y[i].sha256);

const PROFILE_DIR = join(ROOT, 'bench', 'results', 'profiles');
const profileArgs = (name) => ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR, '--cpu-prof-name', `${name}.cpuprofile`];

function clientCommand(client, address, opts, c, image, profile) {
  const S = opts.sparseLimit ? ['-S', opts.sparseLimit] : [];
  return client === 'aosp'
    ? ['fastboot', ['-s', address, ...S, 'flash', c.partition, image]]
    : [process.execPath, [...(profile ? profileArgs(profile) : []), BIN, '-s', address, ...S, 'flash', c.partition, image]];
}

/** One unmeasured miflash run under the V8 CPU profiler. */
async function profileRun(id, run) {
  mkdirSync(PROFILE_DIR, { recursive: true });
  const name = `${id}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const r = await run(name);
  log(`${id} profile: ${r.exit === 0 ? relative(ROOT, join(PROFILE_DIR, `${name}.cpuprofile`)) : `run FAILED (${r.exit})`}`);
}

/**
 * One flash of `image` by `client` against a fresh emulated device (discard
 * mode; `hash: false` adds --no-hash). Returns the run record and the
 * device's download sequence.
 */
async function flashRun(client, logName, c, image, opts, runDir, { hash, profile } = {}) {
  const timeoutMs = Math.max(120_000, 900_000 * opts.scale);
  const logFile = join(runDir, `${logName}.log`);
  rmSync(logFile, { force: true });
  const emu = await startEmulator(BIN, { logFile, maxDownloadSize: opts.maxDownloadSize, partitions: PARTITIONS, hash });
  let r;
  let emuCpu = null;
  try {
    const [cmd, args] = clientCommand(client, emu.address, opts, c, image, profile);
    const cpu0 = emu.cpuSeconds();
    r = await measure(cmd, args, { timeoutMs, cwd: ROOT });
    const cpu1 = emu.cpuSeconds();
    if (cpu0 !== null && cpu1 !== null) emuCpu = round(cpu1 - cpu0, 2);
  } finally {
    await emu.stop();
  }
  const downloads = existsSync(logFile) ? downloadsOf(readFileSync(logFile, 'utf8')) : [];
  if (!opts.keep) rmSync(logFile, { force: true });
  // Exit 0 is not enough: a run that never reached the device must not win "best".
  const why = r.exit !== 0 ? `exit ${r.exit}` : downloads.length === 0 ? 'exit 0 but the device received no download' : null;
  const run = { ok: why === null, wallS: round(r.wallS, 3), rssKiB: r.rssKiB, exit: r.exit, downloads: downloads.length, emulatorCpuS: emuCpu,
    deviceCpuShare: emuCpu === null || !(r.wallS > 0) ? null : round(emuCpu / r.wallS, 3), load1: os.loadavg()[0] };
  if (why) run.error = `${why}\n${r.output}`;
  return { run, downloads, why, output: r.output };
}

const runLine = (r, why, output) =>
  `${r.wallS.toFixed(2)} s, ${r.rssKiB === null ? '?' : (r.rssKiB / 1024).toFixed(0)} MiB RSS, ${r.downloads} downloads, device CPU ${r.emulatorCpuS ?? '?'} s${why ? `, FAILED (${why}): ${lastLine(output)}` : ''}`;
const sameSizes = (sizes, downloads) => sizes.length === downloads.length && downloads.every((d, i) => d.size === sizes[i]);

async function flashCase(id, c, image, opts, runDir) {
  const res = { id, title: c.title, image: relative(ROOT, image), imageBytes: statSync(image).size, partition: c.partition,
    maxDownloadSize: opts.maxDownloadSize, sparseLimit: opts.sparseLimit };
  for (const cl of opts.clients) res[cl] = { runs: [], sizes: null, identityRun: null, downloads: null };
  warm(image);
  // Timed runs: the device only reads and drops the data (--no-hash), so its CPU never sets the pace.
  for (let i = 0; i < opts.runs; i++) {
    const order = i % 2 === 0 ? opts.clients : [...opts.clients].reverse();
    for (const cl of order) {
      const { run, downloads, why, output } = await flashRun(cl, `${id}-${cl}-${i + 1}`, c, image, opts, runDir, { hash: false });
      res[cl].runs.push(run);
      if (run.ok) {
        if (res[cl].sizes === null) res[cl].sizes = downloads.map((d) => d.size);
        else if (!sameSizes(res[cl].sizes, downloads)) res[cl].unstable = true; // same client, same image, different downloads
      }
      log(`${id} ${cl} run ${i + 1}: ${runLine(run, why, output)}, device CPU share ${run.deviceCpuShare === null ? '?' : `${Math.round(100 * run.deviceCpuShare)}%`}`);
    }
  }
  // Payload identity: one untimed run per client against a hashing device (`download SIZE SHA256`).
  for (const cl of opts.clients) {
    const { run, downloads, why, output } = await flashRun(cl, `${id}-${cl}-identity`, c, image, opts, runDir, { hash: true });
    res[cl].identityRun = run;
    if (run.ok) {
      res[cl].downloads = downloads;
      if (res[cl].sizes !== null && !sameSizes(res[cl].sizes, downloads)) res[cl].unstable = true;
    }
    log(`${id} ${cl} identity run (hashing device, untimed): ${runLine(run, why, output)}`);
  }
  if (opts.profile && opts.clients.includes('miflash')) {
    await profileRun(id, async (name) => {
      const { run } = await flashRun('miflash', `${id}-profile`, c, image, { ...opts, keep: false }, runDir, { hash: false, profile: name });
      return run;
    });
  }
  if (res.aosp && res.miflash) {
    // Unproven (a missing identity run) is null; an unstable client cannot prove identity: false.
    res.payloadsIdentical = res.aosp.unstable || res.miflash.unstable ? false
      : res.aosp.downloads && res.miflash.downloads ? sameDownloads(res.aosp.downloads, res.miflash.downloads) : null;
  }
  summarise(res, opts);
  return res;
}

async function fromRawCase(id, c, image, opts, runDir) {
  const timeoutMs = Math.max(120_000, 900_000 * opts.scale);
  const res = { id, title: c.title, image: relative(ROOT, image), imageBytes: statSync(image).size };
  for (const cl of opts.clients) res[cl] = { runs: [], outputSha256: null, outputBytes: null };
  warm(image);
  for (let i = 0; i < opts.runs; i++) {
    const order = i % 2 === 0 ? opts.clients : [...opts.clients].reverse();
    for (const cl of order) {
      const out = join(runDir, `from-raw-${cl}-${i + 1}.simg`);
      rmSync(out, { force: true });
      const [cmd, args] = cl === 'aosp' ? ['img2simg', [image, out]] : [process.execPath, [BIN, 'sparse', 'from-raw', image, out]];
      const r = await measure(cmd, args, { timeoutMs, cwd: ROOT });
      const outBytes = existsSync(out) ? statSync(out).size : 0;
      const why = r.exit !== 0 ? `exit ${r.exit}` : outBytes === 0 ? 'exit 0 but no output written' : null;
      const run = { ok: why === null, wallS: round(r.wallS, 3), rssKiB: r.rssKiB, exit: r.exit, outputBytes: outBytes, load1: os.loadavg()[0] };
      if (why) run.error = `${why}\n${r.output}`;
      res[cl].runs.push(run);
      if (run.ok && res[cl].outputSha256 === null) {
        res[cl].outputSha256 = await sha256File(out);
        res[cl].outputBytes = statSync(out).size;
      }
      if (!opts.keep || i > 0) rmSync(out, { force: true }); // dropping the file early also spares the disk its writeback
      log(`${id} ${cl === 'aosp' ? 'img2simg' : 'miflash'} run ${i + 1}: ${r.wallS.toFixed(2)} s, ${r.rssKiB === null ? '?' : (r.rssKiB / 1024).toFixed(0)} MiB RSS${why ? `, FAILED (${why}): ${lastLine(r.output)}` : ''}`);
    }
  }
  if (opts.profile && opts.clients.includes('miflash')) {
    await profileRun(id, async (name) => {
      const out = join(runDir, 'from-raw-profile.simg');
      try {
        return await measure(process.execPath, [...profileArgs(name), BIN, 'sparse', 'from-raw', image, out], { timeoutMs, cwd: ROOT });
      } finally {
        rmSync(out, { force: true });
      }
    });
  }
  summarise(res, opts);
  if (res.aosp && res.miflash && res.aosp.outputSha256 && res.miflash.outputSha256) {
    res.outputsIdentical = res.aosp.outputSha256 === res.miflash.outputSha256;
  }
  return res;
}

function summarise(res, opts) {
  for (const cl of opts.clients) {
    res[cl].bestWallS = best(res[cl].runs, 'wallS');
    res[cl].bestRssKiB = best(res[cl].runs, 'rssKiB');
    res[cl].failures = res[cl].runs.filter((r) => !r.ok).length + (res[cl].identityRun && !res[cl].identityRun.ok ? 1 : 0);
    const fastest = res[cl].runs.filter((r) => r.ok).sort((x, y) => x.wallS - y.wallS)[0];
    if (fastest && 'deviceCpuShare' in fastest) res[cl].deviceCpuShare = fastest.deviceCpuShare; // of the fastest timed run
  }
  if (res.aosp?.bestWallS && res.miflash?.bestWallS) res.wallRatio = round(res.miflash.bestWallS / res.aosp.bestWallS, 3);
  if (res.aosp?.bestRssKiB && res.miflash?.bestRssKiB) res.rssRatio = round(res.miflash.bestRssKiB / res.aosp.bestRssKiB, 3);
  if (res.miflash) {
    res.targets = {
      wall: res.wallRatio === undefined ? null : res.wallRatio <= 1.0,
      rss: res.miflash.bestRssKiB === null ? null : res.miflash.bestRssKiB / 1024 <= RSS_TARGET_MIB,
    };
    if (res.id !== 'from-raw') res.targets.payloads = res.payloadsIdentical ?? null;
  }
}

const round = (x, d) => Math.round(x * 10 ** d) / 10 ** d;
const lastLine = (s) => s.trim().split('\n').at(-1) ?? '';
const fmt = (x, d = 2) => (x === null || x === undefined ? '-' : x.toFixed(d));
const mib = (kib) => (kib === null || kib === undefined ? '-' : (kib / 1024).toFixed(0));
const wall = (c) => (c && c.runs.length > 0 && c.runs.every((r) => !r.ok) ? 'FAIL' : fmt(c?.bestWallS));
const pct = (x) => (x === null || x === undefined ? '-' : `${Math.round(100 * x)}%`);
const yn = (b) => (b === null || b === undefined ? '-' : b ? 'yes' : 'NO');

function table(results) {
  const head = ['case', 'aosp s', 'miflash s', 'ratio', 'aosp MiB', 'miflash MiB', 'identical', 'downloads', 'dev/aosp', 'dev/miflash', 'targets'];
  const rows = results.map((r) => [
    r.title,
    wall(r.aosp), wall(r.miflash), fmt(r.wallRatio),
    mib(r.aosp?.bestRssKiB), mib(r.miflash?.bestRssKiB),
    yn(r.id === 'from-raw' ? r.outputsIdentical : r.payloadsIdentical),
    r.id === 'from-raw' ? '-' : String((r.aosp ?? r.miflash)?.downloads?.length ?? '-'),
    pct(r.aosp?.deviceCpuShare), pct(r.miflash?.deviceCpuShare),
    r.targets ? Object.entries(r.targets).map(([k, v]) => `${k}:${v === null ? '-' : v ? 'ok' : 'MISS'}`).join(' ') : '-',
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

async function main() {
  const opts = options();
  if (opts.clean) {
    rmSync(opts.work, { recursive: true, force: true });
    log(`deleted ${opts.work}`);
    return 0;
  }
  if (opts.clients.includes('miflash') && !existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('miflash is not built: run `npm run build` (npm run bench does)');
  for (const tool of ['fastboot', 'img2simg', '/usr/bin/time']) {
    if (!sh('sh', ['-c', `command -v ${tool}`])) throw new Error(`${tool} not found (Debian: apt-get install fastboot android-sdk-libsparse-utils time)`);
  }
  const dir = join(opts.work, `scale-${opts.scale}`);
  const runDir = join(opts.work, 'runs');
  mkdirSync(runDir, { recursive: true });
  const needed = [...new Set(opts.only.map((id) => CASES[id].image))];
  const reserve = opts.only.includes('from-raw') ? 2.2 * GiB * opts.scale : 0; // both from-raw outputs can exist at once
  log(`scale ${opts.scale}, ${opts.runs} run(s) per client, max-download-size ${opts.maxDownloadSize}, ${(freeBytes(opts.work) / GiB).toFixed(1)} GiB free in ${opts.work}`);
  const images = ensureImages(dir, opts.scale, needed, { log, reserveBytes: reserve });

  const startedAt = new Date();
  const facts = machine(opts.note);
  const results = [];
  for (const id of opts.only) {
    const c = CASES[id];
    log(`case ${c.title}: ${relative(ROOT, images[c.image])} (${(statSync(images[c.image]).size / MiB).toFixed(0)} MiB file)`);
    results.push(id === 'from-raw' ? await fromRawCase(id, c, images[c.image], opts, runDir) : await flashCase(id, c, images[c.image], opts, runDir));
  }
  facts.loadavgEnd = os.loadavg();

  const text = table(results);
  console.log(`\nmiflash vs AOSP ${facts.fastboot ?? 'fastboot'} (from-raw: vs img2simg); best of ${opts.runs}; scale ${opts.scale}; ${facts.nproc} cores; node ${facts.node}`);
  console.log(text);
  console.log(`targets: wall ratio <= 1.00, miflash peak RSS <= ${RSS_TARGET_MIB} MiB, payloads identical`);
  if (results.some((r) => r.id !== 'from-raw')) {
    console.log('dev/<client>: emulated device CPU s / client wall s in the fastest timed run (device: --discard --no-hash); near 100% would mean the device set the pace');
    console.log('identical: one extra untimed run per client against a hashing device; same `download SIZE SHA256` sequence');
  }

  const report = { startedAt: startedAt.toISOString(), finishedAt: new Date().toISOString(), options: { ...opts, work: relative(ROOT, opts.work) }, machine: facts, targets: { wallRatio: 1.0, rssMiB: RSS_TARGET_MIB }, cases: results, table: text };
  const resultsDir = join(ROOT, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const file = join(resultsDir, `${stamp}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(resultsDir, 'latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${relative(ROOT, file)} and bench/results/latest.json`);

  const missed = results.some((r) => r.targets && Object.values(r.targets).some((v) => v === false));
  const failed = results.some((r) => opts.clients.some((cl) => r[cl]?.failures > 0));
  if (failed) log('some runs FAILED: see "error" in the JSON');
  return (opts.check && missed) || failed ? 1 : 0;
}

if (process.argv[2] === 'rom') {
  // `npm run bench -- rom`: the whole-ROM benchmark (bench/rom.js).
  const { runRomBench } = await import('./rom.js');
  process.exitCode = await runRomBench(process.argv.slice(3));
} else if (process.argv[2] === 'startup') {
  // `npm run bench -- startup`: start-up times against bare node (bench/startup.js).
  const { runStartupBench } = await import('./startup.js');
  process.exitCode = await runStartupBench(process.argv.slice(3));
} else {
  main().then((code) => { process.exitCode = code; }, (err) => { console.error(`bench: ${err.message}`); process.exitCode = 2; });
}
