// Syntax tree of a POSIX shell script (plus the bash forms flash scripts
// use), as the parser in parse.ts builds it. Positions are kept for messages
// and for the engine's node ids.

export interface Pos {
  /** 1-based line. */
  line: number;
  /** Offset in the source. */
  offset: number;
}

export type WordPart =
  /** Text; `quoted` = taken literally (inside quotes or after a backslash): no splitting, no globbing. */
  | { k: 'lit'; v: string; quoted: boolean }
  /** "..." : its parts are all quoted. */
  | { k: 'dq'; parts: WordPart[] }
  /** $name, ${name}, ${name OP word}, ${#name}. */
  | { k: 'param'; name: string; op?: ParamOp; arg?: Word; length?: boolean }
  /** $(...) or `...`. */
  /** `id` numbers command substitutions in the script (stable across runs), so commands inside them have their own identity. */
  | { k: 'cmdsub'; body: List; text: string; id: number }
  /** $((...)): the expression text (expanded then evaluated). */
  | { k: 'arith'; expr: Word };

export type ParamOp = '-' | ':-' | '=' | ':=' | '?' | ':?' | '+' | ':+' | '#' | '##' | '%' | '%%';

export interface Word {
  parts: WordPart[];
  pos: Pos;
  /** Source text of the word. */
  text: string;
}

export interface Redir {
  /** The file descriptor redirected (default 1 for output, 0 for input). */
  fd: number;
  op: '>' | '>>' | '<' | '>&' | '<&' | '>|' | '<>' | '<<' | '<<-' | '&>' | '&>>' | '<<<';
  target: Word;
  /** Here-document body (for << and <<-); `heredocQuoted` = no expansion inside. */
  heredoc?: Word;
}

interface Base {
  pos: Pos;
  /** Source text of the command's first line (trimmed), for messages. */
  text: string;
}

export type Command =
  | (Base & { k: 'simple'; assigns: Array<{ name: string; value: Word }>; words: Word[]; redirs: Redir[] })
  | (Base & { k: 'pipeline'; bang: boolean; cmds: Command[] })
  | (Base & { k: 'andor'; first: Command; rest: Array<{ op: '&&' | '||'; cmd: Command }> })
  | (Base & { k: 'if'; clauses: Array<{ cond: List; body: List }>; else?: List; redirs: Redir[] })
  | (Base & { k: 'loop'; until: boolean; cond: List; body: List; redirs: Redir[] })
  | (Base & { k: 'for'; name: string; words?: Word[]; body: List; redirs: Redir[] })
  | (Base & { k: 'case'; word: Word; items: Array<{ patterns: Word[]; body: List }>; redirs: Redir[] })
  | (Base & { k: 'group'; body: List; subshell: boolean; redirs: Redir[] })
  | (Base & { k: 'func'; name: string; body: Command })
  /** `cmd &` (background): kept so the interpreter can refuse it with its line. */
  | (Base & { k: 'background'; cmd: Command })
  /** [[ ... ]] (bash): the words between the brackets. */
  | (Base & { k: 'dbracket'; words: Word[]; redirs: Redir[] });

export interface List {
  cmds: Command[];
}
