// Tiny stand-ins for the text tools (the real ones live in src/rom/script/tools):
// just enough grep and test for the engine tests. Not GNU-exact; the engine
// only needs pure functions of (argv, stdin).
import type { ToolBox } from '../../../src/plan/evaluate.js';
import type { ToolResult } from '../../../src/rom/script/tools/types.js';

function grep(argv: readonly string[], stdin: string): ToolResult {
  const flags = argv.slice(1).filter((a) => a.startsWith('-')).join('');
  const [pattern] = argv.slice(1).filter((a) => !a.startsWith('-'));
  const re = new RegExp(pattern!);
  const lines = stdin.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const hits = lines.filter((l) => re.test(l));
  const out = flags.includes('o') ? hits.map((l) => re.exec(l)![0]) : hits;
  return { stdout: flags.includes('q') ? '' : out.map((l) => `${l}\n`).join(''), stderr: '', status: hits.length > 0 ? 0 : 1 };
}

function test(argv: readonly string[]): ToolResult {
  const a = argv[0] === '[' ? argv.slice(1, -1) : argv.slice(1);
  const ok = (b: boolean): ToolResult => ({ stdout: '', stderr: '', status: b ? 0 : 1 });
  if (a.length === 2 && a[0] === '-z') return ok(a[1] === '');
  if (a.length === 2 && a[0] === '-n') return ok(a[1] !== '');
  if (a.length === 3) {
    const [x, op, y] = a as [string, string, string];
    const num = (s: string) => {
      if (!/^-?[0-9]+$/.test(s.trim())) return undefined;
      return Number(s);
    };
    if (op === '=') return ok(x === y);
    if (op === '!=') return ok(x !== y);
    const nx = num(x);
    const ny = num(y);
    if (nx === undefined || ny === undefined) return { stdout: '', stderr: `[: integer expression expected\n`, status: 2 };
    const r = { '-eq': nx === ny, '-ne': nx !== ny, '-gt': nx > ny, '-lt': nx < ny, '-ge': nx >= ny, '-le': nx <= ny }[op];
    if (r !== undefined) return ok(r);
  }
  return { stdout: '', stderr: '[: unsupported in the test double\n', status: 2 };
}

export const toolDoubles: ToolBox = {
  has: (name) => ['grep', '[', 'test'].includes(name),
  run: (argv, stdin) => (argv[0] === 'grep' ? grep(argv, stdin) : test(argv)),
};
