// Start-up trace for the benchmark (bench/startup.js): with MIFLASH_TRACE=1,
// one `miflash-trace NAME MS` line on stderr per milestone, MS counted from the
// process's start, so the cost of each phase (module loading, reading the ROM,
// parsing its script, connecting) can be told apart. Off: one env lookup.
const on = process.env.MIFLASH_TRACE === '1';

export function mark(name: string): void {
  if (on) process.stderr.write(`miflash-trace ${name} ${performance.now().toFixed(1)}\n`);
}
