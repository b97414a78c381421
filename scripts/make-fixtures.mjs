#!/usr/bin/env node
// Build a small synthetic Xiaomi ROM from the corpus scripts in fixtures/corpus
// (images generated, checksums consistent). Needs a build (npx tsc -p .).
//   node scripts/make-fixtures.mjs OUT_DIR DEVICE [--anti N] [--piece-limit BYTES] [--seed N]
// DEVICE: raphaelin, liuqin, oxygen, land, cereus, elish, lmi, surya, ysl.
// Prints the partitions (NAME=SIZE) an emulated device needs, one per line.
import { buildSyntheticRom } from '../dist/rom/synthetic.js';

const [out, from, ...rest] = process.argv.slice(2);
if (!out || !from) {
  console.error('usage: node scripts/make-fixtures.mjs OUT_DIR DEVICE [--anti N] [--piece-limit BYTES] [--seed N]');
  process.exit(2);
}
const opt = (name) => {
  const i = rest.indexOf(name);
  return i === -1 ? undefined : Number(rest[i + 1]);
};
const anti = opt('--anti');
const pieceLimit = opt('--piece-limit');
const seed = opt('--seed');
const rom = await buildSyntheticRom(out, {
  from,
  ...(anti !== undefined ? { anti } : {}),
  ...(pieceLimit !== undefined ? { pieceLimit } : {}),
  ...(seed !== undefined ? { seed } : {}),
});
console.error(`${rom.root}: product ${rom.product}, scripts ${rom.scripts.join(', ')}, ${rom.images.length} images`);
for (const p of rom.partitions) console.log(`${p.name}=${p.size}`);
