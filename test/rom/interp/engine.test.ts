// The engine contract, driven by hand-written "front ends" (what the .sh and
// .bat interpreters do for each command): forking on device answers, failure
// policies learnt from the failure side, predicates on every step, refusals
// as steps or as typed errors, and the bounds that keep any script finite.
import { describe, expect, it } from 'vitest';
import { lit, type Term } from '../../../src/plan/predicate.js';
import { planQueries, predText } from '../../../src/plan/pred-text.js';
import { FlashPlanSchema, type PlanStep } from '../../../src/plan/schema.js';
import { simulatePlan, type ModelDevice } from '../../../src/plan/simulate.js';
import { buildPlan } from '../../../src/rom/script/interp/build-plan.js';
import { ScriptInterpretError, type Engine, type EngineOptions, type Loc } from '../../../src/rom/script/interp/engine.js';
import { explore, type Program } from '../../../src/rom/script/interp/explore.js';
import { toolDoubles } from './doubles.js';

const L = (line: number, text = `line ${line}`): Loc => ({ file: 'flash_all.sh', line, text });
const opts = (over: Partial<EngineOptions> = {}): EngineOptions => ({
  file: 'flash_all.sh',
  tools: toolDoubles,
  readRomFile: () => undefined,
  resolveFile: (arg) => (arg.startsWith('/') || arg.includes('..') ? { ok: false, why: `${arg} is outside the ROM` } : { ok: true, file: arg }),
  ...over,
});

/** Helpers a front end would have: run `fastboot ARGS`, pipe into a tool, test a status. */
function sh(e: Engine) {
  let status: Term = lit('0');
  const w = (...a: string[]) => a.map(lit);
  return {
    get status() {
      return status;
    },
    fastboot(line: number, args: string[], vendor = true) {
      const r = e.fastboot(w(...args), { vendor, node: `fb${line}` }, L(line, `fastboot ${args.join(' ')}`));
      status = r.status;
      return r;
    },
    pipe(line: number, input: Term, argv: Array<string | Term>) {
      const r = e.tool(argv.map((a) => (typeof a === 'string' ? lit(a) : a)), input, L(line));
      status = r.status;
      return r;
    },
    test(line: number, argv: Array<string | Term>) {
      return e.succeeded(e.tool([lit('['), ...argv.map((a) => (typeof a === 'string' ? lit(a) : a)), lit(']')], lit(''), L(line)).status, L(line));
    },
    echo(line: number, text: string) {
      e.print(lit(`${text}\n`), 'stdout', L(line), `echo${line}`);
      status = lit('0');
    },
    exit(line: number, n: number): never {
      return e.exit(n, L(line), `exit${line}`);
    },
  };
}

/** fastboot $* getvar product | grep; anti check; crc block; ops checked three ways. */
const xiaomi: Program = (e) => {
  const s = sh(e);
  const product = s.fastboot(1, ['getvar', 'product']);
  const g = s.pipe(1, e.merged(product), ['grep', '^product: *lmi$']);
  e.print(g.stdout, 'stdout', L(1), 'p1');
  if (s.test(2, [s.status, '-ne', '0'])) {
    s.echo(2, 'Missmatching image and device');
    s.exit(2, 1);
  }
  const anti = s.fastboot(3, ['getvar', 'anti']);
  let ver: Term = { kind: 'chomp', of: s.pipe(3, e.merged(anti), ['grep', '-o', '[0-9]+$']).stdout };
  if (s.test(4, ['-z', ver])) ver = lit('0');
  const fields = e.split(ver, L(5));
  if (s.test(5, [...fields, '-gt', '1'])) {
    s.echo(5, 'Current device antirollback version is greater than this pakcage');
    s.exit(5, 1);
  }
  const crc = s.fastboot(6, ['getvar', 'crc']);
  s.pipe(6, e.merged(crc), ['grep', '^crc: 1']);
  if (s.test(7, [s.status, '-eq', '0'])) {
    s.fastboot(8, ['flash', 'crclist', 'images/crclist.txt']);
    if (s.test(9, [s.status, '-ne', '0'])) {
      s.echo(9, 'Flash crclist error');
      s.exit(9, 1);
    }
  }
  // `|| handle_error flash boot error` with handle_error() { echo $@; exit 2; }
  const boot = s.fastboot(10, ['flash', 'boot', 'images/boot.img']);
  if (!e.succeeded(boot.status, L(10))) {
    e.inFrame('call10', L(10), () => {
      s.echo(20, 'flash boot error');
      s.exit(21, 2);
    });
  }
  s.fastboot(11, ['erase', 'misc']); // unchecked
  s.fastboot(12, ['reboot']);
  if (s.test(13, [s.status, '-ne', '0'])) {
    s.echo(13, 'Reboot error');
    s.exit(13, 1);
  }
};

function plan(program: Program, o: Partial<EngineOptions> = {}) {
  const x = explore(program, opts(o));
  const built = buildPlan(x, 'flash_all.sh');
  FlashPlanSchema.parse({ version: 1, source: { script: 'flash_all.sh', dialect: 'sh', mode: 'clean', family: built.family }, warnings: built.warnings, steps: built.steps });
  return { ...built, paths: x.paths.length };
}

function fmt(steps: PlanStep[]): string[] {
  const q = planQueries(steps);
  return steps.map((s) => {
    const what =
      s.kind === 'query'
        ? `${s.id} = ${s.query.kind === 'getvar' ? `getvar ${s.query.name}` : s.query.kind}`
        : s.kind === 'exit'
          ? `exit ${s.status} "${s.message ?? ''}"`
          : s.kind === 'flash'
            ? `flash ${s.partition} ${s.file}`
            : s.kind === 'erase'
              ? `erase ${s.partition}`
              : s.kind === 'note'
                ? `note "${s.text}"`
                : s.kind === 'gate.unknown'
                  ? `REFUSE ${s.reason}`
                  : s.kind;
    const policy = s.kind === 'query' || s.kind === 'note' || s.kind === 'exit' || s.kind === 'gate.unknown' ? '' : s.onFailure === 'abort' ? ` abort(${s.message ?? ''})` : ' ignore';
    return `${s.line}: ${what}${policy}${s.vendorUnchecked ? ' unchecked' : ''}${s.when ? ` if ${predText(s.when, q)}` : ''}`;
  });
}

const ops = (steps: PlanStep[]) => steps.filter((s) => !['query', 'note', 'exit', 'sleep'].includes(s.kind)).map((s) => `${s.kind} ${'partition' in s ? s.partition : ''}`.trim());

describe('engine: a Xiaomi-shaped script', () => {
  const p = plan(xiaomi);

  it('yields queries, gates and ops in script order, each op with its failure policy', () => {
    expect(fmt(p.steps)).toEqual([
      '1: q1 = getvar product',
      '2: exit 1 "Missmatching image and device" if not (fastboot getvar product 2>&1 | grep "^product: *lmi$")',
      '3: q2 = getvar anti',
      expect.stringMatching(/^5: (exit 1 "Current device antirollback version is greater than this pakcage"|REFUSE an unquoted expansion .*several words.*) if /),
      expect.stringMatching(/^5: (exit 1 "Current device antirollback version is greater than this pakcage"|REFUSE an unquoted expansion .*several words.*) if /),
      '6: q3 = getvar crc',
      '8: flash crclist images/crclist.txt abort(Flash crclist error) if fastboot getvar crc 2>&1 | grep "^crc: 1"',
      '10: flash boot images/boot.img abort(flash boot error)',
      '11: erase misc ignore unchecked',
      '12: reboot abort(Reboot error)',
    ]);
    expect(p.family).toBe('xiaomi');
  });

  const device = (vars: Record<string, string>): ModelDevice => ({ vars });
  const cases: Array<[string, Record<string, string>, string[], number | undefined]> = [
    ['matching product, crc 1', { product: 'lmi', anti: '1', crc: '1' }, ['flash crclist', 'flash boot', 'erase misc', 'reboot'], undefined],
    ['matching product, crc 0', { product: 'lmi', anti: '1', crc: '0' }, ['flash boot', 'erase misc', 'reboot'], undefined],
    ['matching product, no crc, no anti', { product: 'lmi' }, ['flash boot', 'erase misc', 'reboot'], undefined],
    ['wrong product', { product: 'lmiin', anti: '0', crc: '1' }, [], 1],
    ['anti too high', { product: 'lmi', anti: '2', crc: '1' }, [], 1],
  ];
  for (const [name, vars, expected, stop] of cases) {
    it(`model device: ${name}`, () => {
      const sim = simulatePlan(p.steps, device(vars), toolDoubles);
      expect(ops(sim.ran)).toEqual(expected);
      expect(sim.stop?.kind === 'exit' ? sim.stop.status : undefined).toBe(stop);
    });
  }

  it('a device answer with several words where the script splits it is refused at run time', () => {
    // `anti: 1 2`: grep -o prints "2"; force several words through a value the double's grep keeps whole.
    const several: Program = (e) => {
      const s = sh(e);
      const q = s.fastboot(1, ['getvar', 'anti']);
      const v: Term = { kind: 'chomp', of: s.pipe(1, e.merged(q), ['grep', '-o', 'anti: .*']).stdout };
      const f = e.split(v, L(2, '[ $ver -gt 1 ]'));
      if (s.test(2, [...f, '-gt', '1'])) s.exit(2, 1);
      s.fastboot(3, ['reboot']);
    };
    const built = plan(several);
    expect(built.steps.some((s) => s.kind === 'gate.unknown' && /several words/.test(s.reason))).toBe(true);
    const sim = simulatePlan(built.steps, { vars: { anti: '1' } }, toolDoubles);
    expect(sim.stop?.kind).toBe('gate.unknown'); // "anti: 1" is two words
  });
});

describe('engine: failure sides', () => {
  it('a script that does something else after a failed operation is refused, naming the line', () => {
    const p: Program = (e) => {
      const s = sh(e);
      s.fastboot(1, ['erase', 'boot']);
      if (s.test(2, [s.status, '-ne', '0'])) s.fastboot(3, ['reboot', 'bootloader']);
      s.fastboot(4, ['flash', 'boot', 'images/boot.img']);
    };
    expect(() => plan(p)).toThrow(ScriptInterpretError);
    expect(() => plan(p)).toThrow(/flash_all\.sh:1: when this command fails the script goes on differently \(line 3: fastboot reboot bootloader\)/);
  });

  it('a failure the script notes and then carries on from is ignored (miflash policy applies)', () => {
    const p: Program = (e) => {
      const s = sh(e);
      s.fastboot(1, ['erase', 'cache']);
      if (s.test(2, [s.status, '-ne', '0'])) s.echo(2, 'erase cache failed, continuing');
      s.fastboot(3, ['reboot']);
    };
    const built = plan(p);
    expect(fmt(built.steps)).toEqual(['1: erase cache ignore unchecked', '3: reboot ignore unchecked']);
  });

  it('set -e style: every status consulted, failures abort without a message', () => {
    const p: Program = (e) => {
      const s = sh(e);
      for (const [line, args] of [
        [1, ['flash', 'boot', 'boot.img']],
        [2, ['erase', 'misc']],
      ] as const) {
        const r = s.fastboot(line, [...args], false);
        if (!e.succeeded(r.status, L(line))) s.exit(line, 1);
      }
    };
    const built = plan(p);
    expect(fmt(built.steps)).toEqual(['1: flash boot boot.img abort()', '2: erase misc abort()']);
    expect(built.family).toBe('google');
  });
});

describe('engine: refusals and bounds', () => {
  it('a construct on one branch becomes a blocking step under that branch', () => {
    const p: Program = (e) => {
      const s = sh(e);
      const q = s.fastboot(1, ['getvar', 'product']);
      s.pipe(1, e.merged(q), ['grep', '-q', 'taro']);
      if (e.succeeded(s.status, L(1))) e.refuse(L(2, 'adb reboot edl'), 'adb', 'adb is not a command miflash interprets');
      s.fastboot(3, ['reboot']);
    };
    const built = plan(p);
    expect(fmt(built.steps)).toEqual(['1: q1 = getvar product', '2: REFUSE adb is not a command miflash interprets if fastboot getvar product 2>&1 | grep -q taro', '3: reboot ignore unchecked']);
    expect(simulatePlan(built.steps, { vars: { product: 'taro' } }, toolDoubles).stop?.kind).toBe('gate.unknown');
    expect(ops(simulatePlan(built.steps, { vars: { product: 'Spacewar' } }, toolDoubles).ran)).toEqual(['reboot']);
  });

  it('a script every path of which hits an unsupported construct is a typed error naming file, line and command', () => {
    const p: Program = (e) => {
      sh(e).echo(1, 'EDL flash');
      e.tool([lit('QSaharaServer'), lit('-p'), lit('/dev/ttyUSB0')], lit(''), L(4, '$script_dir/apps/QSaharaServer -p /dev/$port_num'));
    };
    const err = (() => {
      try {
        plan(p);
      } catch (e) {
        return e as ScriptInterpretError;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(ScriptInterpretError);
    expect(err.line).toBe(4);
    expect(err.message).toMatch(/flash_all\.sh:4: QSaharaServer is not a command miflash interprets/);
    expect(err.exitCode).toBe(2);
  });

  it('a device-dependent partition name is refused on that path', () => {
    const p: Program = (e) => {
      const q = e.fastboot([lit('getvar'), lit('current-slot')], { vendor: false, node: 'a' }, L(1));
      e.fastboot([lit('flash'), { kind: 'concat', parts: [lit('boot_'), { kind: 'chomp', of: q.stderr }] }, lit('boot.img')], { vendor: false, node: 'b' }, L(2, 'fastboot flash boot_$slot boot.img'));
    };
    expect(() => plan(p)).toThrow(/flash_all\.sh:2: fastboot argument 2 depends on the device's answer/);
  });

  it('an endless loop stops at the step bound with a typed error', () => {
    const p: Program = (e) => {
      for (;;) e.tick(L(1, 'while true; do :; done'));
    };
    expect(() => plan(p, { limits: { maxSteps: 1000 } })).toThrow(/more than 1000 commands/);
  });

  it('too many paths stop at the path bound with a typed error', () => {
    const p: Program = (e) => {
      for (let i = 0; i < 20; i++) {
        const q = e.fastboot([lit('getvar'), lit(`v${i}`)], { vendor: false, node: `g${i}` }, L(i + 1));
        e.succeeded(e.tool([lit('grep'), lit('1')], e.merged(q), L(i + 1)).status, L(i + 1));
      }
    };
    expect(() => plan(p, { limits: { maxPaths: 100 } })).toThrow(/more than 100 paths/);
  });

  it('the same query asked again before any operation is one plan query (the device answers the same)', () => {
    const p: Program = (e) => {
      const s = sh(e);
      const a = s.fastboot(1, ['getvar', 'product']);
      const b = s.fastboot(2, ['getvar', 'product']);
      const x = e.succeeded(s.pipe(1, e.merged(a), ['grep', '-q', 'taro']).status, L(1));
      const y = e.succeeded(s.pipe(2, e.merged(b), ['grep', '-q', 'taro']).status, L(2));
      expect(x).toBe(y);
      s.fastboot(3, ['reboot']);
      s.fastboot(4, ['getvar', 'product']);
    };
    const built = plan(p);
    expect(built.steps.filter((s) => s.kind === 'query').map((s) => s.line)).toEqual([1, 4]);
    expect(built.paths).toBe(2);
  });
});

describe('fastboot argv as the AOSP client parses it', () => {
  const one = (args: string[]) => {
    const built = plan((e) => {
      e.fastboot(args.map(lit), { vendor: false, node: 'x' }, L(1, `fastboot ${args.join(' ')}`));
    });
    return built.steps.map((s) => {
      const { line: _l, onFailure: _o, vendorUnchecked: _v, ...rest } = s as PlanStep & { vendorUnchecked?: boolean };
      return rest;
    });
  };

  it('options anywhere; -w, --set-active and the reboot come after every command, in that order', () => {
    expect(one(['--set-active=b', 'flash', 'boot', 'boot.img', 'reboot-bootloader', '-w'])).toEqual([
      { kind: 'flash', partition: 'boot', file: 'boot.img' },
      { kind: 'wipe' },
      { kind: 'set-active', slot: 'b' },
      { kind: 'reboot', target: 'bootloader' },
    ]);
    expect(one(['flash', '--slot=other', 'bootloader', 'bl.img'])).toEqual([{ kind: 'flash', partition: 'bootloader', file: 'bl.img', flags: { slot: 'other' } }]);
    // An update brings the zip's android-info.txt requirements as a gate.
    expect(one(['--skip-reboot', '-w', 'update', 'image.zip'])).toEqual([
      { kind: 'update', file: 'image.zip', wipe: true, skipReboot: true },
      { kind: 'gate.android-info', file: 'image.zip', requirements: null },
    ]);
    expect(one(['flash', 'vbmeta_system_a', 'v.img', '--disable-verity'])).toEqual([{ kind: 'flash', partition: 'vbmeta_system_a', file: 'v.img', flags: { disableVerity: true } }]);
    expect(one(['create-logical-partition', 'odm_a', '1'])).toEqual([{ kind: 'logical-partition', action: 'create', partition: 'odm_a', size: '1' }]);
  });

  it('refuses what it cannot carry out exactly', () => {
    expect(() => one(['flash:raw', 'boot', 'k', 'r'])).toThrow(/mkbootimg/);
    expect(() => one(['-s', 'X', 'reboot'])).toThrow(/-s/);
    expect(() => one(['flash', 'boot'])).toThrow(/ANDROID_PRODUCT_OUT/);
    expect(() => one(['flash', 'boot', '/etc/passwd'])).toThrow(/outside the ROM/);
    expect(() => one(['fetch', 'boot', 'out.img'])).toThrow(/cannot write files/);
  });
});
