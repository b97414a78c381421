// `npm run bench -- startup`: how long miflash takes to start, against bare
// `node -e 0` measured the same way in the same run (many runs each, alternated;
// min and median reported). Cases:
//   node -e 0                       spawn to exit
//   miflash --version               spawn to exit
//   miflash flash ROM (first cmd)   spawn to the first fastboot command arriving at a
//                                   minimal device in this process (a small ROM folder,
//                                   the corpus liuqin scripts); the child is then killed
// with MIFLASH_TRACE=1 for the flash case, miflash's own milestones (module loading,
// ROM opened, script parsed, connected) split the time, so the flash-script parse
// shows separately. The miflash cases run as from the second run on (code cache and
// parsed plan cached, after one untimed run) and as the very first run (nothing
// cached). Each case runs with the sandbox's NODE_EXTRA_CA_CERTS (Node then loads a
// CA bundle at start) and without it.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'miflash.js');
const log = (m) => console.error(`[bench startup] ${m}`);

const USAGE = `usage: npm run bench -- startup [--runs N] [--note TEXT]
  --runs N   runs per case and environment (default 20)`;

function options(argv) {
  const { values } = parseArgs({ args: argv, options: { runs: { type: 'string', default: '20' }, note: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) { console.log(USAGE); process.exit(0); }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
  return { runs, note: values.note ?? null };
}

/** Spawn to exit, in ms. */
function timeExit(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6 }) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/** Spawn to exit, whatever the exit code. */
function runToExit(cmd, args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
}

/**
 * A device that answers the TCP fastboot handshake and notes when the first
 * command arrives (the flash's first getvar); nothing is answered after that.
 */
async function firstCommandDevice() {
  let onCommand = null;
  let hangUp = false;
  const server = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    let shook = false;
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!shook && buf.length >= 4) {
        shook = true;
        buf = buf.subarray(4);
        sock.write('FB01');
      }
      if (shook && buf.length >= 8) {
        const n = Number(buf.readBigUInt64BE(0));
        if (buf.length >= 8 + n) {
          onCommand?.(process.hrtime.bigint(), buf.subarray(8, 8 + n).toString('latin1'));
          if (hangUp) sock.destroy();
        }
      }
    });
    sock.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `tcp:127.0.0.1:${server.address().port}`,
    waitCommand: () => new Promise((resolve) => (onCommand = (t, text) => { onCommand = null; resolve({ t, text }); })),
    /** Warm-up runs: the device hangs up at the first command, so miflash exits by itself (and writes its code cache). */
    setHangUp: (on) => (hangUp = on),
    close: () => new Promise((r) => server.close(r)),
  };
}

/** Spawn to the first command at `device`, in ms; the trace milestones (MIFLASH_TRACE) alongside. */
function timeFirstCommand(device, args, env) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const got = device.waitCommand();
    const child = spawn(process.execPath, [BIN, '-s', device.address, ...args], { env: { ...env, MIFLASH_TRACE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`no command within 30 s: ${err}`)); }, 30_000);
    child.on('close', () => clearTimeout(timer));
    got.then(({ t, text }) => {
      const ms = Number(t - t0) / 1e6;
      child.kill('SIGKILL');
      child.once('close', () => {
        const marks = {};
        for (const m of err.matchAll(/^miflash-trace (\S+) ([\d.]+)$/gm)) marks[m[1]] = Number(m[2]);
        resolve({ ms, first: text, marks });
      });
    });
  });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: round(s[0]), median: round(s[Math.floor(s.length / 2)]), n: s.length };
};
const round = (x) => (x === undefined ? null : Math.round(x * 10) / 10);

async function ensureRom(dir) {
  if (existsSync(join(dir, 'flash_all.sh'))) return dir;
  const { buildSyntheticRom } = await import('../dist/rom/synthetic.js');
  await buildSyntheticRom(dir, { from: 'liuqin', seed: 3 });
  return dir;
}

async function main(argv) {
  const opts = options(argv);
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) throw new Error('miflash is not built: run `npm run build` (npm run bench does)');
  const rom = await ensureRom(join(ROOT, 'bench', 'work', 'startup-rom'));
  const device = await firstCommandDevice();
  // miflash's caches (the V8 code cache above all) in a folder of the bench's own, empty at start.
  const cacheDir = join(ROOT, 'bench', 'work', 'startup-cache');
  rmSync(cacheDir, { recursive: true, force: true });
  const base = { ...process.env, MIFLASH_CACHE_DIR: cacheDir };
  const withCa = { ...base };
  const noCa = { ...base };
  delete noCa.NODE_EXTRA_CA_CERTS;
  const envs = process.env.NODE_EXTRA_CA_CERTS ? { 'with NODE_EXTRA_CA_CERTS': withCa, 'without': noCa } : { 'no NODE_EXTRA_CA_CERTS set': noCa };
  // The user's very first run: no code cache, no cached plan (an empty cache folder each time).
  let fresh = 0;
  const noCache = (env) => {
    const dir = join(cacheDir, `fresh-${fresh++}`);
    mkdirSync(dir, { recursive: true });
    return { ...env, MIFLASH_CODE_CACHE: '0', MIFLASH_CACHE_DIR: dir };
  };
  const cases = {
    'node -e 0': (env) => timeExit(process.execPath, ['-e', '0'], env),
    'miflash --version': (env) => timeExit(process.execPath, [BIN, '--version'], env),
    'miflash --version, nothing cached': (env) => timeExit(process.execPath, [BIN, '--version'], noCache(env)),
    'miflash flash ROM: first command': (env) => timeFirstCommand(device, ['flash', rom, '--yes'], env),
    'miflash flash ROM: first command, nothing cached': (env) => timeFirstCommand(device, ['flash', rom, '--yes'], noCache(env)),
  };
  // One untimed run of each command that ends by itself, so the timed runs find the code cache
  // a user has from the second run on (the timed flash runs are killed at their first command).
  for (const env of Object.values(envs)) {
    await timeExit(process.execPath, [BIN, '--version'], env);
    device.setHangUp(true);
    await runToExit(process.execPath, [BIN, '-s', device.address, 'flash', rom, '--yes'], env);
    device.setHangUp(false);
  }
  const samples = {};
  log(`${opts.runs} runs per case and environment, alternated; ROM ${relative(ROOT, rom)}`);
  for (let i = 0; i < opts.runs; i++) {
    for (const [envName, env] of Object.entries(envs)) {
      for (const [name, run] of Object.entries(cases)) {
        const r = await run(env);
        ((samples[envName] ??= {})[name] ??= []).push(r);
      }
    }
  }
  await device.close();
  const report = { kind: 'startup', startedAt: new Date().toISOString(), node: process.version, nproc: os.availableParallelism(), loadavg: os.loadavg(), note: opts.note, targets: { versionOverNodeMs: 60, firstCommandOverNodeMs: 100 }, results: {} };
  const lines = [];
  for (const [envName, byCase] of Object.entries(samples)) {
    const base = stats(byCase['node -e 0'].map((r) => r.ms));
    const res = (report.results[envName] = {});
    for (const [name, rs] of Object.entries(byCase)) {
      const s = stats(rs.map((r) => r.ms));
      const over = { min: round(s.min - base.min), median: round(s.median - base.median) };
      res[name] = { ...s, overNodeMs: over };
      const target = name === 'miflash --version' ? 60 : name === 'miflash flash ROM: first command' ? 100 : null;
      lines.push([envName, name, s.min.toFixed(1), s.median.toFixed(1), name === 'node -e 0' ? '' : over.min.toFixed(1), name === 'node -e 0' ? '' : over.median.toFixed(1),
        target === null ? '' : `<= ${target}: ${over.median <= target ? 'ok' : 'MISS'}`]);
      if (rs[0].marks) {
        // Median of each phase (between consecutive milestones), from the child's own clock.
        const names = ['main', 'flash-command', 'rom-modules-loaded', 'rom-opened', 'script-parsed', 'runner-loaded', 'connected'];
        const phases = {};
        for (let k = 0; k < names.length; k++) {
          const vals = rs.map((r) => r.marks[names[k]] - (k === 0 ? 0 : r.marks[names[k - 1]])).filter((v) => Number.isFinite(v));
          if (vals.length) phases[`${k === 0 ? 'start' : names[k - 1]} -> ${names[k]}`] = stats(vals).median;
        }
        res[name].phasesMedianMs = phases;
        res[name].firstCommand = rs[0].first;
      }
    }
  }
  const head = ['environment', 'case', 'min ms', 'median ms', 'over node min', 'over node median', 'target (median over node)'];
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const table = [fmt(head), w.map((n) => '-'.repeat(n)).join('  '), ...lines.map(fmt)].join('\n');
  console.log(`\nstart-up, ${opts.runs} runs each, node ${process.version}, load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  console.log(table);
  for (const [envName, res] of Object.entries(report.results)) {
    for (const [name, r] of Object.entries(res)) {
      const p = r.phasesMedianMs;
      if (p) console.log(`${envName}, ${name.replace('miflash flash ROM: first command', 'flash')}: phases (median ms, miflash's own clock): ${Object.entries(p).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  }
  report.table = table;
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `startup-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  writeFileSync(join(dir, 'startup-latest.json'), JSON.stringify(report, null, 2) + '\n');
  log(`wrote ${relative(ROOT, file)} and bench/results/startup-latest.json`);
  return 0;
}

export function runStartupBench(argv) {
  return main(argv).then((c) => c, (err) => { console.error(`bench startup: ${err.message}`); return 2; });
}
