// What one `fastboot ARGS...` invocation means, following the AOSP client's
// own parsing (fastboot.cpp FastBootTool::Main, v29): getopt_long permutes
// options, so global options may stand before or after the subcommand;
// several commands may follow each other; `-w`, `--set-active` and the reboot
// commands take effect after every command, in that order (wipe, set-active,
// then one reboot). Read-only invocations become queries; the rest become plan
// operations. Anything miflash cannot carry out exactly is refused with the
// reason, never approximated.
import type { Query } from '../../../plan/predicate.js';
import type { PlanStep } from '../../../plan/schema.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Base = 'line' | 'onFailure' | 'message' | 'vendorUnchecked' | 'foreign' | 'when' | 'condition';

/** A device operation as the plan carries it, without line, policy or predicate (the plan builder adds those). */
export type OpSpec = DistributiveOmit<Exclude<PlanStep, { kind: `gate.${string}` | 'sleep' | 'note' | 'query' | 'exit' }>, Base>;

export type FileResolution = { ok: true; file: string } | { ok: false; why: string };

export type FastbootMeaning =
  | { kind: 'query'; query: Query }
  | { kind: 'ops'; ops: OpSpec[]; warnings: string[] }
  | { kind: 'refuse'; why: string };

const PARTITION = /^[A-Za-z0-9_.-]+$/;
const REBOOT_TARGETS = ['bootloader', 'recovery', 'fastboot', 'edl'] as const;
type RebootTarget = (typeof REBOOT_TARGETS)[number];

class Refusal extends Error {}
const refuse = (why: string): never => {
  throw new Refusal(why);
};

interface Options {
  wipe: boolean;
  skipReboot: boolean;
  disableVerity: boolean;
  disableVerification: boolean;
  slot?: string;
  setActive?: string | true;
  version: boolean;
}

/** getopt_long as the AOSP client configures it: options anywhere until `--`. */
function parseOptions(argv: readonly string[]): { opts: Options; args: string[] } {
  const opts: Options = { wipe: false, skipReboot: false, disableVerity: false, disableVerification: false, version: false };
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const value = eq < 0 ? undefined : a.slice(eq + 1);
      const noValue = () => value === undefined || refuse(`option --${name} takes no value`);
      switch (name) {
        case 'slot':
          opts.slot = value ?? argv[++i] ?? refuse('--slot needs a value');
          break;
        case 'set-active':
          opts.setActive = value ?? true; // an optional argument is only taken when attached (--set-active=b)
          break;
        case 'skip-reboot':
          noValue();
          opts.skipReboot = true;
          break;
        case 'disable-verity':
          noValue();
          opts.disableVerity = true;
          break;
        case 'disable-verification':
          noValue();
          opts.disableVerification = true;
          break;
        case 'version':
          noValue();
          opts.version = true;
          break;
        case 'verbose':
        case 'unbuffered':
          noValue();
          break;
        default:
          refuse(`unsupported fastboot option --${name}`);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const c = a[j]!;
        if (c === 'w') opts.wipe = true;
        else if (c === 'v' || c === 'u') continue; // verbose; -u only changes how format erases
        else if (c === 'a') {
          const rest = a.slice(j + 1);
          opts.setActive = rest === '' ? true : rest;
          break;
        } else if (c === 's') refuse('the script picks a device with -s; miflash flashes the device you select');
        else if (c === 'S') refuse('-S (sparse limit) in the script is not supported; give miflash -S instead');
        else refuse(`unsupported fastboot option -${c}`);
      }
      continue;
    }
    args.push(a);
  }
  return { opts, args };
}

function slotName(s: string, what: string): string {
  const v = s.replace(/^_/, '');
  if (!/^[a-z]+$/.test(v)) refuse(`bad slot ${JSON.stringify(s)} in ${what}`);
  return v;
}

/**
 * The meaning of `fastboot ARGV` (the words after `fastboot`, `$*` already
 * expanded). `resolveFile` turns an image argument into a path inside the ROM.
 */
export function interpretFastbootArgv(argv: readonly string[], resolveFile: (arg: string) => FileResolution): FastbootMeaning {
  try {
    return interpret(argv, resolveFile);
  } catch (err) {
    if (err instanceof Refusal) return { kind: 'refuse', why: err.message };
    throw err;
  }
}

function interpret(argv: readonly string[], resolveFile: (arg: string) => FileResolution): FastbootMeaning {
  const { opts, args } = parseOptions(argv);
  if (opts.version) return { kind: 'query', query: { kind: 'version' } };
  const warnings: string[] = [];
  const first = args[0];
  // Read-only invocations: one query, nothing else.
  if (first === 'devices') {
    if (args.length > 1 || opts.wipe || opts.setActive !== undefined) refuse('`devices` with other commands');
    return { kind: 'query', query: { kind: 'devices' } };
  }
  if ((first === 'getvar' && args.length === 2) || (first === 'oem' && args[1] === 'device-info' && args.length === 2)) {
    if (opts.wipe || opts.setActive !== undefined) refuse(`${first} combined with -w or --set-active`);
    if (first === 'oem') return { kind: 'query', query: { kind: 'oem-device-info' } };
    if (args[1] === 'all') refuse('`getvar all` output is not one miflash renders; check single variables instead');
    return { kind: 'query', query: { kind: 'getvar', name: args[1]! } };
  }
  if (args.includes('getvar')) refuse('getvar combined with other commands in one fastboot call');

  const ops: OpSpec[] = [];
  const part = (p: string | undefined, cmd: string): string => {
    if (p === undefined) return refuse(`${cmd} needs a partition name`);
    if (!PARTITION.test(p)) return refuse(`partition name ${JSON.stringify(p)} is not a plain name`);
    return p;
  };
  const file = (f: string | undefined, cmd: string): string => {
    if (f === undefined) return refuse(`${cmd} without an image file (fastboot would look in $ANDROID_PRODUCT_OUT)`);
    const r = resolveFile(f);
    return r.ok ? r.file : refuse(r.why);
  };
  const noSlot = (cmd: string) => {
    if (opts.slot !== undefined) refuse(`--slot with ${cmd} is not supported`);
  };
  let reboot: RebootTarget | 'system' | undefined;
  const wantReboot = (t: RebootTarget | 'system') => {
    // AOSP keeps one flag per target and reboots once, preferring a normal reboot, then bootloader, recovery, fastboot.
    const rank = (x: RebootTarget | 'system') => ['system', 'bootloader', 'recovery', 'fastboot', 'edl'].indexOf(x);
    if (reboot === undefined || rank(t) < rank(reboot)) reboot = t;
  };
  let update: Extract<OpSpec, { kind: 'update' }> | undefined;
  let flashedVerity = false;

  const rest = [...args];
  if (rest.length === 0 && !opts.wipe && opts.setActive === undefined) refuse('fastboot call without a command');
  while (rest.length > 0) {
    const cmd = rest.shift()!;
    const next = () => rest.shift();
    if (cmd === 'flash') {
      const p = part(next(), cmd);
      const f = file(next(), cmd);
      const flags = {
        ...(opts.disableVerity ? { disableVerity: true } : {}),
        ...(opts.disableVerification ? { disableVerification: true } : {}),
        ...(opts.slot !== undefined ? { slot: opts.slot } : {}),
      };
      if (opts.disableVerity || opts.disableVerification) flashedVerity = true;
      ops.push({ kind: 'flash', partition: p, file: f, ...(Object.keys(flags).length > 0 ? { flags } : {}) });
    } else if (cmd === 'erase') {
      noSlot(cmd);
      ops.push({ kind: 'erase', partition: part(next(), cmd) });
    } else if (cmd === 'format' || cmd.startsWith('format:')) {
      noSlot(cmd);
      const [, fsType, size] = cmd.split(':');
      if (size) refuse('format with a size override is not supported');
      ops.push({ kind: 'format', partition: part(next(), cmd), ...(fsType ? { fsType } : {}) });
    } else if (cmd === 'set_active') {
      ops.push({ kind: 'set-active', slot: slotName(next() ?? refuse('set_active needs a slot'), cmd) });
    } else if (cmd === 'reboot') {
      if (rest.length === 1) {
        const t = next()!;
        if (!(REBOOT_TARGETS as readonly string[]).includes(t)) refuse(`unknown reboot target ${t}`);
        wantReboot(t as RebootTarget);
      } else if (rest.length > 1) refuse('junk after reboot command');
      else wantReboot('system');
    } else if (/^reboot-(bootloader|recovery|fastboot|edl)$/.test(cmd)) {
      wantReboot(cmd.slice(7) as RebootTarget);
    } else if (cmd === 'oem') {
      const words = rest.splice(0);
      if (words.length === 0) refuse('oem without a command');
      for (const w of words) if (w === '' || /\s/.test(w)) refuse(`oem argument ${JSON.stringify(w)} is empty or contains spaces`);
      if (words.length === 1 && words[0] === 'lock') ops.push({ kind: 'lock', command: 'oem lock' });
      else ops.push({ kind: 'oem', args: words });
    } else if (cmd === 'flashing') {
      const sub = rest.splice(0);
      if (sub.length !== 1) refuse(`unknown 'flashing' command ${sub.join(' ') || '(none)'}`);
      const s = sub[0]!;
      if (s === 'lock') ops.push({ kind: 'lock', command: 'flashing lock' });
      else if (s === 'unlock' || s === 'lock_critical' || s === 'unlock_critical' || s === 'get_unlock_ability') ops.push({ kind: 'flashing', sub: s });
      else refuse(`unknown 'flashing' command ${s}`);
    } else if (cmd === 'update') {
      if (update) refuse('two updates in one fastboot call');
      update = { kind: 'update', file: file(next() ?? 'update.zip', cmd), wipe: false, skipReboot: opts.skipReboot };
      ops.push(update);
    } else if (cmd === 'boot') {
      const f = file(next(), cmd);
      // AOSP takes any following words as ramdisk and second stage.
      if (rest.length > 0) refuse('boot with a separate ramdisk builds a boot image on the host (mkbootimg); not supported');
      ops.push({ kind: 'boot', file: f });
    } else if (cmd === 'create-logical-partition' || cmd === 'resize-logical-partition') {
      const p = part(next(), cmd);
      const size = next() ?? refuse(`${cmd} needs a size`);
      if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(size)) refuse(`${cmd} size ${JSON.stringify(size)} is not a number`);
      ops.push({ kind: 'logical-partition', action: cmd.startsWith('create') ? 'create' : 'resize', partition: p, size });
    } else if (cmd === 'delete-logical-partition') {
      ops.push({ kind: 'logical-partition', action: 'delete', partition: part(next(), cmd) });
    } else if (cmd === 'wipe-super') {
      noSlot(cmd);
      ops.push({ kind: 'wipe-super', file: file(next() ?? 'super_empty.img', cmd) });
    } else if (cmd === 'snapshot-update') {
      const a = next();
      if (a !== undefined && a !== 'cancel' && a !== 'merge') refuse('expected: snapshot-update [cancel|merge]');
      ops.push({ kind: 'snapshot-update', ...(a ? { action: a as 'cancel' | 'merge' } : {}) });
    } else if (cmd === 'flash:raw') {
      refuse('flash:raw builds a boot image on the host (mkbootimg); miflash does not support it');
    } else if (cmd === 'fetch') {
      refuse('fetch writes a partition to a file on this computer; a flash script interpreted by miflash cannot write files');
    } else {
      refuse(`unsupported fastboot command ${cmd}`);
    }
  }
  if (flashedVerity && !ops.some((o) => o.kind === 'flash')) refuse('--disable-verity/--disable-verification without a flash');
  if (opts.skipReboot && !update) refuse('--skip-reboot only applies to update');
  // After the commands: -w, then --set-active, then one reboot (AOSP order).
  if (opts.wipe) {
    if (update) update.wipe = true;
    else ops.push({ kind: 'wipe' });
  }
  if (opts.setActive !== undefined) {
    if (update && !update.skipReboot) refuse('--set-active with update (the update reboots first)');
    const slot = opts.setActive === true ? opts.slot : opts.setActive;
    if (slot === undefined) refuse('--set-active without a slot means "the current slot"; not supported');
    ops.push({ kind: 'set-active', slot: slotName(slot!, '--set-active') });
  }
  if (update && !update.skipReboot) reboot = undefined; // the update step reboots itself
  if (reboot !== undefined) ops.push({ kind: 'reboot', ...(reboot === 'system' ? {} : { target: reboot }) });
  if (opts.disableVerity || opts.disableVerification) {
    for (const o of ops) if (o.kind === 'flash' && /^vbmeta(_a|_b)?$/.test(o.partition)) warnings.push(`flash ${o.partition} with AVB verification disabled (vbmeta flags patched by the host)`);
  }
  return { kind: 'ops', ops, warnings };
}
