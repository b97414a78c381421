// One bounded matcher for every dialect: the tree is compiled to a small
// backtracking-VM program (char / set / split / jmp / save / assert / backref /
// look / keep / match), run with RE2's "bit-state" pruning: a (instruction,
// position) pair already explored is never explored again, so patterns without
// back references match in time proportional to program x subject, whatever
// their shape ((a*)*b cannot blow up). With back references pruning is unsound,
// so every step is charged to the call's Budget and a runaway match stops with
// ToolLimitError instead of hanging.
//
// Two disciplines:
// - 'posix' (grep, sed, awk, expr): the leftmost-longest overall match, as
//   POSIX requires; submatches are then the first (greedy, leftmost-preference)
//   assignment that produces that overall match — glibc agrees on everything
//   but pathological nested-group cases.
// - 'perl' (grep -P): the leftmost-first match in priority order, as PCRE does.

import { LIMITS, type Budget } from '../limits.js';
import { ToolLimitError } from '../errors.js';
import { foldCase, hasBackref, isWordCode, lengthRange, otherCase, type Assertion, type CharPredicate, type Node } from './ast.js';

type Inst =
  | { op: 'char'; code: number; alt: number }
  | { op: 'set'; test: CharPredicate }
  | { op: 'any'; newline: boolean }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'save'; slot: number }
  | { op: 'assert'; kind: Assertion }
  | { op: 'backref'; index: number }
  | { op: 'look'; prog: Program; ahead: boolean; negate: boolean; minLen: number; maxLen: number }
  | { op: 'keep' }
  | { op: 'mark'; slot: number } // remember the position a loop iteration started at
  | { op: 'progress'; slot: number } // fail an iteration that matched the empty string
  | { op: 'match' };

interface Program {
  insts: Inst[];
  icase: boolean;
  /** Capture slots (2 per group incl. group 0) plus loop registers. */
  slots: number;
  pruning: boolean;
}

export interface MatchResult {
  start: number;
  end: number;
  /** captures[k] = [start, end] of group k, or undefined when it did not participate. */
  captures: ([number, number] | undefined)[];
}

export interface CompileOptions {
  discipline: 'posix' | 'perl';
  icase?: boolean;
  command: string;
}

export class Regex {
  private readonly prog: Program;
  /** The same program behind a lazy `(?s:.)*?` prefix: one run finds the leftmost match. */
  private readonly search: Program;
  private readonly groups: number;

  constructor(
    node: Node,
    groups: number,
    private readonly opts: CompileOptions,
  ) {
    this.groups = groups;
    const c = new Compiler(groups, !!opts.icase, !hasBackref(node), opts.command);
    this.prog = c.program(node, true, false);
    this.search = c.program(node, true, true);
  }

  /**
   * The first match starting at or after `from` in `text`; assertions see the
   * whole text (so `^` matches only at 0, as with REG_NOTBOL for later matches).
   */
  exec(text: string, from: number, budget: Budget): MatchResult | null {
    if (from > text.length) return null;
    const vm = new Vm(text, budget);
    const first = vm.run(this.search, 0, from, 'first', -1);
    if (!first) return null;
    if (this.opts.discipline === 'perl') return this.result(first, from);
    return this.matchAt(text, first[0]!, budget);
  }

  /** A match starting exactly at `start`, or null. */
  matchAt(text: string, start: number, budget: Budget): MatchResult | null {
    const vm = new Vm(text, budget);
    if (this.opts.discipline === 'perl') {
      const slots = vm.run(this.prog, 0, start, 'first', -1);
      return slots ? this.result(slots, start) : null;
    }
    const longest = vm.run(this.prog, 0, start, 'longest', -1);
    if (!longest) return null;
    const end = longest[1]!;
    const slots = this.groups === 0 ? longest : vm.run(this.prog, 0, start, 'first', end);
    return this.result(slots ?? longest, start);
  }

  private result(slots: number[], start: number): MatchResult {
    const captures: ([number, number] | undefined)[] = [];
    for (let g = 0; g <= this.groups; g++) {
      const a = slots[2 * g]!;
      const b = slots[2 * g + 1]!;
      captures.push(a >= 0 && b >= 0 ? [a, b] : undefined);
    }
    const s0 = slots[0]! >= 0 ? slots[0]! : start;
    return { start: s0, end: slots[1]!, captures };
  }
}

class Compiler {
  private loopSlots = 0;

  constructor(
    private readonly groups: number,
    private readonly icase: boolean,
    private readonly pruning: boolean,
    private readonly command: string,
  ) {}

  program(node: Node, top: boolean, unanchored = false): Program {
    const insts: Inst[] = [];
    if (unanchored) {
      insts.push({ op: 'split', x: 3, y: 1 }, { op: 'any', newline: true }, { op: 'jmp', x: 0 });
    }
    if (top) insts.push({ op: 'save', slot: 0 });
    this.emit(node, insts);
    if (top) insts.push({ op: 'save', slot: 1 });
    insts.push({ op: 'match' });
    return { insts, icase: this.icase, slots: 2 * (this.groups + 1) + this.loopSlots, pruning: this.pruning };
  }

  private push(insts: Inst[], i: Inst): number {
    if (insts.length >= LIMITS.regexProgram)
      throw new ToolLimitError(this.command, `a regular expression of more than ${LIMITS.regexProgram} compiled instructions`);
    insts.push(i);
    return insts.length - 1;
  }

  private emit(n: Node, insts: Inst[]): void {
    switch (n.t) {
      case 'empty':
        return;
      case 'char': {
        const alt = this.icase ? otherCase(n.code) : n.code;
        this.push(insts, { op: 'char', code: n.code, alt });
        return;
      }
      case 'set': {
        const t = n.test;
        this.push(insts, { op: 'set', test: this.icase ? (c) => t(c) || t(otherCase(c)) : t });
        return;
      }
      case 'any':
        this.push(insts, { op: 'any', newline: n.newline });
        return;
      case 'cat':
        for (const i of n.items) this.emit(i, insts);
        return;
      case 'alt': {
        // split L1, next; L1: a; jmp end; next: split L2, next2; ...
        const jumps: number[] = [];
        n.items.forEach((item, k) => {
          if (k < n.items.length - 1) {
            const sp = this.push(insts, { op: 'split', x: 0, y: 0 });
            (insts[sp] as { x: number }).x = insts.length;
            this.emit(item, insts);
            jumps.push(this.push(insts, { op: 'jmp', x: 0 }));
            (insts[sp] as { y: number }).y = insts.length;
          } else this.emit(item, insts);
        });
        for (const j of jumps) (insts[j] as { x: number }).x = insts.length;
        return;
      }
      case 'group':
        if (n.index === null) return this.emit(n.node, insts);
        this.push(insts, { op: 'save', slot: 2 * n.index });
        this.emit(n.node, insts);
        this.push(insts, { op: 'save', slot: 2 * n.index + 1 });
        return;
      case 'assert':
        this.push(insts, { op: 'assert', kind: n.kind });
        return;
      case 'backref':
        this.push(insts, { op: 'backref', index: n.index });
        return;
      case 'keep':
        this.push(insts, { op: 'keep' });
        return;
      case 'look': {
        const sub = new Compiler(this.groups, this.icase, this.pruning, this.command);
        const [minLen, maxLen] = lengthRange(n.node);
        this.push(insts, { op: 'look', prog: sub.program(n.node, false), ahead: n.ahead, negate: n.negate, minLen, maxLen });
        return;
      }
      case 'repeat':
        return this.repeat(n, insts);
    }
  }

  private repeat(n: Extract<Node, { t: 'repeat' }>, insts: Inst[]): void {
    for (let k = 0; k < n.min; k++) this.emit(n.node, insts);
    if (n.max === Infinity) {
      const nullable = lengthRange(n.node)[0] === 0;
      const slot = nullable && !this.pruning ? 2 * (this.groups + 1) + this.loopSlots++ : -1;
      const loop = this.push(insts, { op: 'split', x: 0, y: 0 });
      const body = insts.length;
      if (slot >= 0) this.push(insts, { op: 'mark', slot });
      this.emit(n.node, insts);
      if (slot >= 0) this.push(insts, { op: 'progress', slot });
      this.push(insts, { op: 'jmp', x: loop });
      this.setSplit(insts[loop]!, body, insts.length, n.greedy);
      return;
    }
    const splits: number[] = [];
    for (let k = n.min; k < n.max; k++) {
      splits.push(this.push(insts, { op: 'split', x: 0, y: 0 }));
      const body = insts.length;
      this.emit(n.node, insts);
      (insts[splits[splits.length - 1]!] as { x: number }).x = body;
    }
    for (const sp of splits) this.setSplit(insts[sp]!, (insts[sp] as { x: number }).x, insts.length, n.greedy);
  }

  private setSplit(i: Inst, body: number, out: number, greedy: boolean): void {
    const s = i as { x: number; y: number };
    [s.x, s.y] = greedy ? [body, out] : [out, body];
  }
}

type Frame = { pc: number; pos: number; slot: -1 } | { pc: -1; pos: number; slot: number };

class Vm {
  constructor(
    private readonly text: string,
    private readonly budget: Budget,
  ) {}

  /**
   * Runs `prog` from instruction `pc` at `pos`. 'first': the first match in
   * priority order (ending exactly at `end` when end >= 0); 'longest': explores
   * every path and returns the slots of the longest match.
   */
  run(prog: Program, pc0: number, pos0: number, mode: 'first' | 'longest', end: number, init?: number[]): number[] | null {
    const text = this.text;
    const n = text.length;
    const insts = prog.insts;
    const slots = init ? init.slice() : new Array<number>(prog.slots).fill(-1);
    let best: number[] | null = null;
    const width = n + 1;
    const visited = prog.pruning ? new Visited(insts.length * width) : null;
    const stack: Frame[] = [{ pc: pc0, pos: pos0, slot: -1 }];
    let steps = 0;
    try {
      while (stack.length > 0) {
        const f = stack.pop()!;
        if (f.slot >= 0) {
          slots[f.slot] = f.pos;
          continue;
        }
        let pc = f.pc;
        let pos = f.pos;
        for (;;) {
          if (++steps >= 4096) {
            this.budget.chargeRegex(steps);
            steps = 0;
          }
          if (visited && visited.testAndSet(pc * width + pos)) break;
          const inst = insts[pc]!;
          let ok = true;
          switch (inst.op) {
            case 'char': {
              const c = text.charCodeAt(pos);
              ok = pos < n && (c === inst.code || c === inst.alt);
              if (ok) pos++;
              break;
            }
            case 'set':
              ok = pos < n && inst.test(text.charCodeAt(pos));
              if (ok) pos++;
              break;
            case 'any':
              ok = pos < n && (inst.newline || text.charCodeAt(pos) !== 10);
              if (ok) pos++;
              break;
            case 'split':
              stack.push({ pc: inst.y, pos, slot: -1 });
              pc = inst.x;
              continue;
            case 'jmp':
              pc = inst.x;
              continue;
            case 'save':
            case 'mark':
              stack.push({ pc: -1, pos: slots[inst.slot]!, slot: inst.slot });
              slots[inst.slot] = pos;
              break;
            case 'keep':
              stack.push({ pc: -1, pos: slots[0]!, slot: 0 });
              slots[0] = pos;
              break;
            case 'progress':
              ok = slots[inst.slot] !== pos;
              break;
            case 'assert':
              ok = checkAssert(inst.kind, text, pos);
              break;
            case 'backref': {
              const a = slots[2 * inst.index]!;
              const b = slots[2 * inst.index + 1]!;
              if (a < 0 || b < 0) {
                ok = false; // an unset group matches nothing (glibc and PCRE agree)
                break;
              }
              const len = b - a;
              ok = pos + len <= n;
              for (let k = 0; ok && k < len; k++) {
                const x = text.charCodeAt(a + k);
                const y = text.charCodeAt(pos + k);
                ok = x === y || (prog.icase && foldCase(x) === foldCase(y));
              }
              if (ok) pos += len;
              break;
            }
            case 'look': {
              const r = this.look(inst, pos, slots);
              ok = r !== null;
              if (r && !inst.negate) {
                for (let k = 2; k < r.length; k++)
                  if (r[k] !== slots[k]) {
                    stack.push({ pc: -1, pos: slots[k]!, slot: k });
                    slots[k] = r[k]!;
                  }
              }
              break;
            }
            case 'match':
              if (end >= 0 && pos !== end) {
                ok = false;
                break;
              }
              if (mode === 'first') return slots.slice();
              if (!best || pos > best[1]!) {
                best = slots.slice();
                best[1] = pos;
              }
              ok = false;
              break;
          }
          if (!ok) break;
          pc++;
        }
      }
      return best;
    } finally {
      this.budget.chargeRegex(steps);
    }
  }

  /** Evaluates a lookaround at `pos`; returns the slots it set on success (for captures inside), null on failure. */
  private look(inst: Extract<Inst, { op: 'look' }>, pos: number, slots: number[]): number[] | null {
    let found: number[] | null = null;
    if (inst.ahead) found = this.run(inst.prog, 0, pos, 'first', -1, slots);
    else {
      const lo = Math.max(0, pos - (inst.maxLen === Infinity ? pos : inst.maxLen));
      for (let k = pos - inst.minLen; k >= lo && !found; k--) found = this.run(inst.prog, 0, k, 'first', pos, slots);
    }
    if (inst.negate) return found ? null : slots;
    return found;
  }
}

function checkAssert(kind: Assertion, text: string, pos: number): boolean {
  const before = pos > 0 && isWordCode(text.charCodeAt(pos - 1));
  const after = pos < text.length && isWordCode(text.charCodeAt(pos));
  switch (kind) {
    case 'bol':
      return pos === 0;
    case 'eol':
      return pos === text.length;
    case 'word-boundary':
      return before !== after;
    case 'not-word-boundary':
      return before === after;
    case 'word-start':
      return !before && after;
    case 'word-end':
      return before && !after;
  }
}

/** A set of explored (instruction, position) pairs: a bitmap when small, a hash set otherwise. */
class Visited {
  private readonly bits: Uint8Array | null;
  private readonly set: Set<number> | null;

  constructor(size: number) {
    if (size <= 1 << 24) {
      this.bits = new Uint8Array((size >> 3) + 1);
      this.set = null;
    } else {
      this.bits = null;
      this.set = new Set();
    }
  }

  testAndSet(key: number): boolean {
    if (this.bits) {
      const b = this.bits[key >> 3]!;
      const m = 1 << (key & 7);
      if (b & m) return true;
      this.bits[key >> 3] = b | m;
      return false;
    }
    if (this.set!.has(key)) return true;
    this.set!.add(key);
    return false;
  }
}
