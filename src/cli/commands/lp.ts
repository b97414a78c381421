// `miflash lp`: Android dynamic-partition (liblp) metadata, offline.
// `lp dump` prints what AOSP `lpdump` prints for a super image (raw or sparse)
// or a super_empty.img. The LP library loads inside the action.
import type { Command } from 'commander';

interface DumpOptions {
  slot?: string;
  all?: boolean;
  dumpMetadataSize?: boolean;
}

export function registerLp(program: Command): void {
  const lp = program.command('lp').description('Android dynamic partitions: read super / super_empty.img LP metadata (offline)');
  lp.command('dump')
    .description('print the LP metadata as AOSP lpdump does (--json: as lpdump --json; --all: every slot); super images may be raw or sparse')
    .argument('<image>', 'super.img (raw or sparse) or super_empty.img')
    .option('--slot <n>', 'metadata slot: a number, or a suffix (a, _a, b, _b)')
    .option('-d, --dump-metadata-size', 'print the bytes reserved for metadata (the first logical sector x 512)')
    .action(async (image: string, opts: DumpOptions, cmd: Command) => {
      // --json and --all are the program's global flags (lpdump's -s is taken by --serial: use --slot)
      const { json, all } = cmd.optsWithGlobals<{ json?: boolean; all?: boolean }>();
      process.stdout.write(await dump(image, { ...opts, all, json: Boolean(json) }));
    });
}

/** The text `miflash lp dump` prints (exported for tests). */
export async function dump(image: string, opts: DumpOptions & { json: boolean }): Promise<string> {
  const { BadInputError } = await import('../../errors.js');
  const { readLpImage, slotCount } = await import('../../lp/file.js');
  const { formatJson, formatMetadata, reservedMetadataBytes, slotNumberForSuffix } = await import('../../lp/index.js');
  if (opts.all && (opts.slot !== undefined || opts.json)) throw new BadInputError('--all cannot be combined with --slot or --json (as lpdump)');
  let slot = 0;
  if (opts.slot !== undefined) {
    if (/^\d+$/.test(opts.slot)) slot = Number(opts.slot);
    else if (/^_?[ab]$/.test(opts.slot)) slot = slotNumberForSuffix(opts.slot);
    else throw new BadInputError(`bad --slot "${opts.slot}": a number, or a, _a, b, _b`);
  }
  const first = await readLpImage(image, slot);
  if (opts.json) return formatJson(first.metadata);
  if (opts.dumpMetadataSize) return `${reservedMetadataBytes(first.metadata)}\n`;
  // lpdump numbers the slots when the image has several (a super_empty image has one)
  const slots = first.empty ? 1 : await slotCount(image);
  let out = (slots > 1 ? `Slot ${slot}:\n` : '') + formatMetadata(first.metadata);
  if (opts.all) {
    for (let i = 1; i < slots; i++) {
      const next = await readLpImage(image, i).catch(() => undefined);
      if (next) out += `\nSlot ${i}:\n` + formatMetadata(next.metadata);
    }
  }
  return out;
}
