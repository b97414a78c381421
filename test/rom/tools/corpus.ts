// Every concrete text-tool command line in the vendor corpus scripts, as argv,
// for oracle tests. Lines with shell expansions the tests cannot reproduce are left out.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '../../..');
/** The repository's copy of the corpus, and the shared one beside the clone when present. */
export const CORPUS_DIRS = [join(ROOT, 'fixtures/corpus'), join(ROOT, '../shared/corpus'), '/work/shared/corpus'];

/** Splits a simple shell word list (quotes, no expansions). null if it has expansions. */
export function shellWords(s: string): string[] | null {
  const out: string[] = [];
  let cur: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const j = s.indexOf("'", i + 1);
      if (j < 0) return null;
      cur = (cur ?? '') + s.slice(i + 1, j);
      i = j;
    } else if (c === '"') {
      let j = i + 1;
      let w = '';
      for (; j < s.length && s[j] !== '"'; j++) {
        if ((s[j] === '$' && /[\w{(@*#?$!-]/.test(s[j + 1] ?? '')) || s[j] === '`') return null;
        if (s[j] === '\\' && '"\\$`'.includes(s[j + 1] ?? '')) w += s[++j];
        else w += s[j];
      }
      if (j >= s.length) return null;
      cur = (cur ?? '') + w;
      i = j;
    } else if (c === ' ' || c === '\t') {
      if (cur !== null) out.push(cur);
      cur = null;
    } else if (c === '$' || c === '`' || c === '>' || c === '<' || c === '&') return null;
    else if (c === '\\') cur = (cur ?? '') + (s[++i] ?? '');
    else cur = (cur ?? '') + c;
  }
  if (cur !== null) out.push(cur);
  return out;
}

/** argv of every `TOOL ...` pipeline stage in the corpus .sh scripts, deduplicated. */
export function corpusCommands(tool: string): string[][] {
  const seen = new Map<string, string[]>();
  const files: string[] = [];
  for (const dir of CORPUS_DIRS) {
    try {
      files.push(...readdirSync(dir).filter((f) => f.endsWith('.sh')).map((f) => join(dir, f)));
    } catch {
      // that copy is absent here
    }
  }
  const re = new RegExp(`(?:^|[|(;]|\\$\\(|&&)\\s*(${tool.replace(/[[\]]/g, '\\$&')}\\s[^|;)\`\\n]*)`, 'g');
  for (const f of files) {
    const text = readFileSync(f, 'utf8').replace(/\\\$/g, '$');
    for (const m of text.matchAll(re)) {
      const words = shellWords(m[1]!.trim());
      if (words && words[0] === tool) seen.set(JSON.stringify(words), words);
    }
  }
  return [...seen.values()];
}
