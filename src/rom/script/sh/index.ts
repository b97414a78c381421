// .sh flash script -> plan steps: parse (parse.ts), interpret every path
// against the engine (interpret.ts), build the steps (../interp). The shell
// is the one the shebang names: bash for #!/bin/bash (or env bash), else
// Debian's sh (dash), whose builtins differ (`[ a == b ]` is an error there,
// echo interprets backslashes, read has no -n).
import { buildPlan, explore, ScriptInterpretError, type Limits } from '../interp/index.js';
import { toolBox } from '../tools/index.js';
import type { ParsedScript } from '../types.js';
import { interpretSh } from './interpret.js';
import { parseSh as parseShSyntax, ShSyntaxError } from './parse.js';

export interface ShPlanOptions {
  file: string;
  readRomText?: (file: string) => string | undefined;
  listRomFiles?: () => readonly string[];
  inputs?: readonly string[];
  limits?: Partial<Limits>;
}

export function shellOf(text: string): 'dash' | 'bash' {
  const first = text.replace(/^\ufeff/, '').split('\n', 1)[0]!;
  return /^#!\s*(\S*\/)?(env\s+)?bash\b/.test(first) || /^#!\s*\S*\/env\s+bash\b/.test(first) ? 'bash' : 'dash';
}

export function planShScript(text: string, opts: ShPlanOptions): ParsedScript & { shell: 'dash' | 'bash' } {
  const shell = shellOf(text);
  let ast;
  try {
    ast = parseShSyntax(text, { bash: shell === 'bash' });
  } catch (err) {
    if (err instanceof ShSyntaxError) throw new ScriptInterpretError({ file: opts.file, line: err.line, text: err.text }, err.text, err.message, 'script.syntax');
    throw err;
  }
  const exploration = explore((engine) => interpretSh(ast, engine, { file: opts.file, shell }), {
    file: opts.file,
    tools: toolBox,
    readRomFile: (f) => opts.readRomText?.(f),
    ...(opts.listRomFiles ? { listRomFiles: opts.listRomFiles } : {}),
    shell,
    ...(opts.inputs ? { inputs: opts.inputs } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  return { ...buildPlan(exploration, opts.file), shell };
}
