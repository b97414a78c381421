// .bat/.cmd flash script -> plan steps: cmd.exe's parser (parse.ts) and
// interpreter (interpret.ts) over the same engine as the .sh front end
// (../interp). cmd parses each line after expanding it, so parsing happens
// while interpreting; what can be checked before running is: every literal
// `goto`/`call` target names a label of the file.
import { buildPlan, explore, ScriptInterpretError, type Limits } from '../interp/index.js';
import { toolBox } from '../tools/index.js';
import type { ParsedScript } from '../types.js';
import { interpretBat, labelOf, physicalLines, prepareBat } from './interpret.js';

export interface BatPlanOptions {
  file: string;
  /** The ROM folder's name (what %cd% and %~dp0 end in); default "ROM". */
  folderName?: string;
  readRomText?: (file: string) => string | undefined;
  listRomFiles?: () => readonly string[];
  inputs?: readonly string[];
  limits?: Partial<Limits>;
}

export function planBatScript(text: string, opts: BatPlanOptions): ParsedScript {
  checkLabels(text, opts.file);
  // The folder's name as %cd% / %~dp0 end in it. Characters cmd would split or expand an unquoted path at (blanks,
  // & ( ) ^ % ! , ; = quotes) become _: the vendor scripts use %~dp0 unquoted, and a copy of the ROM in
  // "rom (1)" must not make them fail here (on Windows they would).
  const folderName = opts.folderName && !/[\\/:]/.test(opts.folderName) ? opts.folderName.replace(/[\s&()^%!,;="'<>|]/g, '_') : 'ROM';
  const prepared = prepareBat(text);
  const exploration = explore((engine) => interpretBat(prepared, engine, { file: opts.file, folderName }), {
    file: opts.file,
    tools: toolBox,
    readRomFile: (f) => opts.readRomText?.(f),
    ...(opts.listRomFiles ? { listRomFiles: opts.listRomFiles } : {}),
    ...(opts.inputs ? { inputs: opts.inputs } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
  });
  return buildPlan(exploration, opts.file);
}

/** A `goto X` / `call :X` in command position whose literal label is nowhere in the file: the script is broken. Also refused: private-use characters. */
function checkLabels(text: string, file: string): void {
  const lines = physicalLines(text);
  const labels = new Set(lines.map(labelOf).filter((l): l is string => l !== undefined));
  const jump = /(^|[&|(]|\bdo\s|\belse\s|\)\s)[\s@]*(goto\s+:?|call\s+:)([^\s&|()<>"^%!]+)(?=$|[\s&|)<>])/gi;
  lines.forEach((line, i) => {
    // The interpreter marks device answers inside a line with private-use characters: the script may not use them.
    if (/[\ue000-\uf8ff]/.test(line)) throw new ScriptInterpretError({ file, line: i + 1, text: line }, line, 'a private-use Unicode character (U+E000 to U+F8FF) in the script', 'script.syntax');
    if (labelOf(line) !== undefined || /^\s*@?rem(\s|$)/i.test(line)) return;
    for (const m of line.matchAll(jump)) {
      const label = m[3]!.toUpperCase();
      if (label === 'EOF' && /^goto/i.test(m[2]!)) continue;
      if (!labels.has(label)) {
        throw new ScriptInterpretError({ file, line: i + 1, text: line }, line, `${m[2]!.trim().replace(/\s+/, ' ')}${m[3]}: the script has no label :${m[3]}`, 'script.syntax');
      }
    }
  });
}
