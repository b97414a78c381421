// 10 000 generated scripts never crash the interpreter: mutations of the
// corpus and variant scripts, and random scripts from a small shell grammar
// (loops, functions, recursion, pipelines, device checks, here-documents, ...).
// test/rom/bat/fuzz.test.ts does the same for .bat scripts.
// Each yields a valid plan or a typed error (exit code 2) — never a TypeError,
// a RangeError, a hang or runaway memory: the engine's bounds (paths, steps,
// call depth, value size, events) stop every script.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MiflashError } from '../../../src/errors.js';
import { FlashPlanSchema } from '../../../src/plan/schema.js';
import { parseScript } from '../../../src/rom/script/index.js';
import { REPO_ROOT } from '../../helpers/emulator.js';

import { LIMITS, TOTAL, prng, type Rand } from '../../helpers/fuzz.js';

const SOURCES = [
  ...readdirSync(path.join(REPO_ROOT, 'fixtures/corpus'))
    .filter((f) => f.endsWith('.sh') && !/generate-factory/.test(f))
    .map((f) => readFileSync(path.join(REPO_ROOT, 'fixtures/corpus', f), 'utf8')),
  ...readdirSync(path.join(REPO_ROOT, 'fixtures/variants'))
    .filter((f) => f.endsWith('.sh'))
    .map((f) => readFileSync(path.join(REPO_ROOT, 'fixtures/variants', f), 'utf8')),
];

const TOKENS = [
  '$?', '"', "'", '`', '(', ')', '{', '}', ';', ';;', '|', '||', '&&', '&', '\\', '$(', '${', '}', 'fi', 'then', 'else', 'do', 'done', 'esac',
  'while true; do', 'exit 3', 'exit', 'return', 'break', 'read x', 'set -e', 'set -u', '$((1/0))', '$((x+1))', '<<EOF', '>/dev/null', '2>&1',
  'fastboot $* getvar anti', 'fastboot getvar product 2>&1 | grep -q x', '[ $x -gt 1 ]', '"$@"', '$*', '*', '?', '[', 'f() { f; }; f', 'eval x',
];

/** A corpus script with a few random edits. */
function mutate(r: Rand): string {
  const lines = r.pick(SOURCES).split('\n');
  const edits = 1 + r.int(4);
  for (let e = 0; e < edits; e++) {
    const i = r.int(Math.max(1, lines.length));
    switch (r.int(6)) {
      case 0:
        lines.splice(i, 1);
        break;
      case 1:
        lines.splice(i, 0, lines[r.int(lines.length)] ?? '');
        break;
      case 2: {
        const j = r.int(lines.length);
        [lines[i], lines[j]] = [lines[j] ?? '', lines[i] ?? ''];
        break;
      }
      case 3: {
        const l = lines[i] ?? '';
        const at = r.int(l.length + 1);
        lines[i] = `${l.slice(0, at)}${r.pick(TOKENS)}${l.slice(at)}`;
        break;
      }
      case 4: {
        const l = lines[i] ?? '';
        const words = l.split(' ');
        words[r.int(words.length)] = r.pick(TOKENS);
        lines[i] = words.join(' ');
        break;
      }
      default: {
        const l = lines[i] ?? '';
        const at = r.int(l.length + 1);
        lines[i] = l.slice(0, at) + l.slice(at + 1 + r.int(4));
      }
    }
  }
  return lines.join('\n');
}

const VARS = ['x', 'ver', 'slot', 'list', 'p'];
const GETVARS = ['product', 'anti', 'crc', 'partition-type:cust', 'unlocked', 'is-userspace', 'current-slot'];

function word(r: Rand): string {
  return r.pick([
    'boot', 'images/boot.img', '"$x"', '$x', '${x:-0}', '"${ver}"x', '$(dirname $0)/images/a.img', '`cat images/anti_version.txt`', '1', '0', '""', "'a b'",
    '$((1+2))', '$1', '"$@"', '*.img', 'a\\ b', `$(fastboot getvar ${r.pick(GETVARS)} 2>&1 | grep -o "[0-9]*")`,
  ]);
}

function command(r: Rand, depth: number): string {
  const v = r.pick(VARS);
  const simple = [
    () => `fastboot $* getvar ${r.pick(GETVARS)} 2>&1 | grep ${r.pick(['-q', '', '-E', '-o'])} "${r.pick(['^product: *lmi', 'yes', '^crc: 1', 'raw', '[0-9]+'])}"`,
    () => `fastboot $* ${r.pick(['flash boot images/boot.img', 'erase cache', 'reboot', 'set_active a', 'oem lock', 'flash --slot=all abl abl.img', '-w', 'reboot fastboot', 'create-logical-partition odm_a 1', 'flash:raw boot k'])}`,
    () => `${v}=${word(r)}`,
    () => `${v}=$(fastboot getvar ${r.pick(GETVARS)} 2>&1 | ${r.pick(['grep -oP "anti: \\K[0-9]+"', 'cut -d" " -f2', 'head -n 1', 'sed -n "s/.*: //p"', 'wc -l'])})`,
    () => `echo ${word(r)}`,
    () => `[ ${word(r)} ${r.pick(['-gt', '-eq', '=', '!=', '==', '-lt'])} ${word(r)} ]`,
    () => `test -z "$${v}"`,
    () => `read ${v}`,
    () => `exit ${r.int(4)}`,
    () => `sleep ${r.int(3)}`,
    () => `${r.pick(['adb devices', 'lsusb', 'rm -rf /', 'curl x', 'eval "$x"', 'source x', 'cd images', 'cat images/x.txt', 'printf "%s\\n" a'])}`,
    () => `f${r.int(3)} ${word(r)}`,
    () => `if [ $? -ne 0 ]; then echo "error"; exit 1; fi`,
    () => `${v}=$((\${${v}:-0} + 1))`,
    () => `cat <<EOF\n${word(r)}\nEOF`,
  ];
  if (depth <= 0 || r.chance(0.55)) return r.pick(simple)();
  const body = () => block(r, depth - 1);
  return r.pick([
    () => `if ${command(r, 0)}; then\n${body()}\nelif ${command(r, 0)}; then\n${body()}\nelse\n${body()}\nfi`,
    () => `while ${command(r, 0)}; do\n${body()}\ndone`,
    () => `until ${command(r, 0)}; do\n${body()}\ndone`,
    () => `for ${r.pick(VARS)} in ${word(r)} ${word(r)} $${r.pick(VARS)}; do\n${body()}\ndone`,
    () => `case ${word(r)} in\n${r.pick(['a', '*', 'lmi|taro', '[0-9]*'])}) ${command(r, 0)} ;;\n*) ${command(r, 0)} ;;\nesac`,
    () => `f${r.int(3)}() {\n${body()}\n}`,
    () => `{ ${command(r, 0)}; ${command(r, 0)}; }`,
    () => `( ${command(r, 0)} )`,
    () => `${command(r, 0)} ${r.pick(['&&', '||', '|'])} ${command(r, 0)}`,
    () => `! ${command(r, 0)}`,
  ])();
}

function block(r: Rand, depth: number): string {
  return Array.from({ length: 1 + r.int(4) }, () => command(r, depth)).join('\n');
}

function randomScript(r: Rand): string {
  const head = r.pick(['', '#!/bin/bash\n', '#!/bin/sh\nset -e\n', 'set -eu\n']);
  return head + block(r, 3);
}

describe('fuzz: generated scripts yield a plan or a typed error', () => {
  it(`${TOTAL} scripts (mutations of the corpus and random shell), bounded`, () => {
    const r = prng(0x8badf00d);
    let plans = 0;
    let refusals = 0;
    let slowest = 0;
    let slowText = '';
    for (let n = 0; n < TOTAL; n++) {
      const text = n % 10 === 0 ? mutate(r) : randomScript(r);
      const inputs = r.chance(0.3) ? ['a', 'y'] : [];
      const t0 = performance.now();
      try {
        const plan = parseScript(text, { file: 'flash_all.sh', dialect: 'sh', inputs, limits: LIMITS, readRomText: (f) => (f === 'images/anti_version.txt' ? '3\n' : undefined) });
        expect(FlashPlanSchema.safeParse(plan).success).toBe(true);
        plans++;
      } catch (err) {
        if (!(err instanceof MiflashError) || err.exitCode !== 2) {
          throw new Error(`script #${n} crashed the interpreter (${(err as Error)?.constructor?.name}: ${(err as Error)?.message}):\n${text}`);
        }
        refusals++;
      }
      const ms = performance.now() - t0;
      if (ms > slowest) {
        slowest = ms;
        slowText = text;
      }
    }
    expect(plans + refusals).toBe(TOTAL);
    // Both outcomes occur: the generator is not trivially all-refused or all-accepted.
    expect(plans).toBeGreaterThan(TOTAL / 10);
    expect(refusals).toBeGreaterThan(TOTAL / 10);
    console.log(`fuzz: ${plans} plans, ${refusals} typed refusals, slowest ${slowest.toFixed(0)} ms`);
    if (process.env.MIFLASH_FUZZ_SHOW_SLOWEST) console.log(slowText);
  }, 600_000);
});
