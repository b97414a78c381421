// `miflash sparse`: inspect, convert and split Android sparse images offline.
// The sparse library loads inside each action, keeping start-up light.
import type { Command } from 'commander';

interface GlobalOpts {
  json?: boolean;
  sparseLimit?: string;
}

export function registerSparse(program: Command): void {
  const sparse = program.command('sparse').description('inspect, convert and split Android sparse images (offline)');

  sparse
    .command('info')
    .description('validate an image and summarise its header and chunks')
    .argument('<image>', 'sparse (or raw) image')
    .option('--chunks', 'list every chunk')
    .action(async (image: string, opts: { chunks?: boolean }, cmd: Command) => {
      await info(image, opts, globals(cmd));
    });

  sparse
    .command('from-raw')
    .description('convert a raw image to a sparse image (like img2simg, byte-identical output)')
    .argument('<raw>', 'raw image')
    .argument('<out>', 'sparse image to write')
    .action(async (raw: string, out: string, _opts: unknown, cmd: Command) => {
      const { rawToSparse } = await import('../../sparse/index.js');
      const r = await rawToSparse(raw, out);
      print(globals(cmd), { event: 'sparse.from-raw', input: raw, output: out, ...r }, () =>
        `${out}: sparse image, ${r.chunks} chunks, ${r.totalBlocks} blocks of ${r.blockSize} bytes, ${r.outputSize} bytes written`,
      );
    });

  sparse
    .command('to-raw')
    .description('expand a sparse image to a raw image (like simg2img)')
    .argument('<sparse>', 'sparse image')
    .argument('<out>', 'raw image to write')
    .action(async (input: string, out: string, _opts: unknown, cmd: Command) => {
      const { sparseToRaw } = await import('../../sparse/index.js');
      const r = await sparseToRaw(input, out);
      print(globals(cmd), { event: 'sparse.to-raw', input, output: out, ...r }, () =>
        `${out}: raw image, ${r.outputSize} bytes (${r.totalBlocks} blocks of ${r.blockSize} bytes)`,
      );
    });

  sparse
    .command('split')
    .description('write the pieces fastboot -S SIZE would download, as files DIR/<name>_sparsechunk.<n> (an image within the limit is one piece, the file as is)')
    .argument('<image>', 'sparse or raw image')
    .option('--limit <size>', 'largest piece, e.g. 64K, 256M, 1G (default: the global -S)')
    .requiredOption('--out <dir>', 'directory for the pieces (created if missing)')
    .option('--aosp-quirks', 'reproduce AOSP libsparse byte for byte, including its malformed pieces of raw images whose size is not a multiple of 4096')
    .action(async (image: string, opts: { limit?: string; out: string; aospQuirks?: boolean }, cmd: Command) => {
      await split(image, opts, globals(cmd));
    });

  sparse
    .command('count')
    .description("number of downloads fastboot -S SIZE makes for the image (Xiaomi's sparsecrclist count)")
    .argument('<image>', 'sparse or raw image')
    .option('--limit <size>', 'download limit, e.g. 512M (default: the global -S)')
    .action(async (image: string, opts: { limit?: string }, cmd: Command) => {
      const g = globals(cmd);
      const { countPieces } = await import('../../sparse/index.js');
      const limit = await limitOf(opts.limit, g);
      const count = await countPieces(image, limit);
      print(g, { event: 'sparse.count', image, limit, count }, () => String(count));
    });

  sparse
    .command('crc')
    .description("Xiaomi's sparsecrclist CRC of a sparse image (CRC-32 of the expanded RAW and FILL data)")
    .argument('<image>', 'sparse image')
    .action(async (image: string, _opts: unknown, cmd: Command) => {
      const { sparseCrc } = await import('../../sparse/index.js');
      const crc = await sparseCrc(image);
      const hex = `0x${crc.toString(16)}`;
      print(globals(cmd), { event: 'sparse.crc', image, crc, hex }, () => hex);
    });
}

function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals<GlobalOpts>();
}

function print(g: GlobalOpts, json: object, text: () => string): void {
  process.stdout.write((g.json ? JSON.stringify(json) : text()) + '\n');
}

async function limitOf(limit: string | undefined, g: GlobalOpts): Promise<number> {
  const { parseSize } = await import('../size.js');
  const { BadInputError } = await import('../../errors.js');
  const text = limit ?? g.sparseLimit;
  if (text === undefined) throw new BadInputError('missing --limit SIZE (or the global -S SIZE)', { code: 'input.missing' });
  return parseSize(text, '--limit');
}

async function info(image: string, opts: { chunks?: boolean }, g: GlobalOpts): Promise<void> {
  const { isSparseFile, readSparseFile } = await import('../../sparse/index.js');
  const { formatSize } = await import('../size.js');
  const { stat } = await import('node:fs/promises');
  if (!(await isSparseFile(image))) {
    const size = (await stat(image)).size;
    print(g, { event: 'sparse.info', path: image, format: 'raw', fileSize: size }, () =>
      `${image}: not a sparse image (raw data, ${size} bytes = ${formatSize(size)})`,
    );
    return;
  }
  const f = await readSparseFile(image);
  const h = f.header;
  const expandedSize = h.totalBlocks * h.blockSize;
  const summary = { raw: tally(), fill: tally(), 'dont-care': tally(), crc32: tally() };
  for (const c of f.chunks) {
    summary[c.type].chunks++;
    summary[c.type].blocks += c.blocks;
  }
  const json = {
    event: 'sparse.info',
    path: image,
    format: 'sparse',
    fileSize: f.fileSize,
    expandedSize,
    header: h,
    summary,
    trailingBytes: f.trailingBytes,
    ...(opts.chunks ? { chunks: f.chunks } : {}),
  };
  print(g, json, () => {
    const lines = [
      `${image}: sparse image v${h.majorVersion}.${h.minorVersion}, ${f.fileSize} bytes (${formatSize(f.fileSize)})`,
      `  expanded: ${expandedSize} bytes (${formatSize(expandedSize)}) = ${h.totalBlocks} blocks of ${h.blockSize} bytes`,
      `  headers: file ${h.fileHeaderSize} B, chunk ${h.chunkHeaderSize} B; image_checksum 0x${h.imageChecksum.toString(16).padStart(8, '0')}`,
      `  chunks: ${h.totalChunks} = ` +
        (['raw', 'fill', 'dont-care', 'crc32'] as const)
          .map((t) => `${LABEL[t]} ${summary[t].chunks}` + (t === 'crc32' ? '' : ` (${summary[t].blocks} blocks)`))
          .join(', '),
    ];
    if (f.trailingBytes > 0) lines.push(`  warning: ${f.trailingBytes} bytes after the last chunk (ignored)`);
    if (opts.chunks) {
      lines.push('  ' + row('#', 'offset', 'type', 'start blk', 'blocks', 'detail'));
      for (const c of f.chunks) lines.push('  ' + chunkLine(c));
    }
    return lines.join('\n');
  });
}

const LABEL = { raw: 'RAW', fill: 'FILL', 'dont-care': 'DONT_CARE', crc32: 'CRC32' } as const;

function tally(): { chunks: number; blocks: number } {
  return { chunks: 0, blocks: 0 };
}

type AnyChunk = import('../../sparse/index.js').SparseChunk;

function chunkLine(c: AnyChunk): string {
  const detail =
    c.type === 'raw'
      ? `data at ${c.dataOffset}, ${c.dataLength} bytes`
      : c.type === 'fill'
        ? `fill 0x${c.fill.toString(16).padStart(8, '0')}`
        : c.type === 'crc32'
          ? `crc 0x${c.crc.toString(16).padStart(8, '0')}`
          : '';
  return row(String(c.index), String(c.headerOffset), LABEL[c.type], String(c.startBlock), String(c.blocks), detail);
}

function row(index: string, offset: string, type: string, start: string, blocks: string, detail: string): string {
  return [index.padEnd(5), offset.padStart(10), type.padEnd(9), start.padStart(10), blocks.padStart(8), detail].join('  ');
}

async function split(
  image: string,
  opts: { limit?: string; out: string; aospQuirks?: boolean },
  g: GlobalOpts,
): Promise<void> {
  const { prepareForDownload, writePayload } = await import('../../sparse/index.js');
  const { mkdir } = await import('node:fs/promises');
  const { basename, join } = await import('node:path');
  const limit = await limitOf(opts.limit, g);
  const prepared = await prepareForDownload(image, limit, { aospQuirks: opts.aospQuirks });
  await mkdir(opts.out, { recursive: true });
  const files: { path: string; size: number }[] = [];
  for (const [i, piece] of prepared.pieces.entries()) {
    const path = join(opts.out, `${basename(image)}_sparsechunk.${i}`);
    await writePayload(image, piece, path);
    files.push({ path, size: piece.size });
  }
  print(g, { event: 'sparse.split', image, limit, format: prepared.format, pieces: files }, () =>
    [`${image}: ${files.length} piece(s) (${prepared.format})`, ...files.map((f) => `  ${f.path}  ${f.size} bytes`)].join('\n'),
  );
}
