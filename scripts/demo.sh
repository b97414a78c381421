#!/usr/bin/env bash
# One-command demo on a fresh clone (no phone needed):
#   install + build, make a small synthetic Xiaomi ROM (real vendor flash_all
#   scripts, tiny images), start `miflash emulate` with its partitions on a
#   free loopback port, read its variables, show the plan, flash the ROM, and
#   prove the partitions now hold the images. Everything lives in a temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MIFLASH=(node "$ROOT/bin/miflash.js")

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

[ -d node_modules ] || npm ci
# tsc emits dist/ even when some file has a type error; the demo only needs dist/.
npx tsc -p tsconfig.json >/dev/null || true
[ -f dist/cli/main.js ] || { echo "demo: build produced no dist/cli/main.js" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/miflash-demo.XXXXXX")
EMU_PID=
cleanup() {
  if [ -n "$EMU_PID" ] && kill -0 "$EMU_PID" 2>/dev/null; then kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

say "building a synthetic raphaelin ROM in $WORK/rom"
node --input-type=module -e "
  import { buildSyntheticRom } from '$ROOT/dist/rom/synthetic.js';
  const rom = await buildSyntheticRom(process.argv[1], { from: 'raphaelin', seed: 1 });
  const fs = await import('node:fs');
  fs.writeFileSync(process.argv[2], rom.product + '\n');
  fs.writeFileSync(process.argv[3], rom.partitions.map((p) => '--partition\n' + p.name + '=' + p.size).join('\n') + '\n');
  console.log(rom.scripts.join(' ') + ': ' + rom.images.length + ' images');
" "$WORK/rom" "$WORK/product" "$WORK/partitions"
PRODUCT=$(cat "$WORK/product")
mapfile -t PARTS < "$WORK/partitions"

say "starting an emulated $PRODUCT in fastboot mode"
"${MIFLASH[@]}" emulate --listen tcp:127.0.0.1:0 --store "$WORK/store" --product "$PRODUCT" "${PARTS[@]}" > "$WORK/emu.out" 2> "$WORK/emu.err" &
EMU_PID=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$WORK/emu.out" 2>/dev/null && break
  kill -0 "$EMU_PID" 2>/dev/null || { cat "$WORK/emu.err" >&2; exit 1; }
  sleep 0.1
done
DEVICE=$(sed -n 's/^listening on //p' "$WORK/emu.out")
[ -n "$DEVICE" ] || { echo "demo: the emulator did not start" >&2; exit 1; }
echo "device: $DEVICE"

say "miflash -s $DEVICE getvar all (first lines)"
"${MIFLASH[@]}" -s "$DEVICE" getvar all 2>/dev/null | head -n 12

say "miflash plan ROM"
"${MIFLASH[@]}" plan "$WORK/rom" | head -n 25
echo "..."

part_sha() { # sha256 of the first SIZE bytes of a partition file
  head -c "$2" "$WORK/store/$1.img" | sha256sum | cut -d' ' -f1
}
BOOT_SIZE=$(stat -c %s "$WORK/rom/images/boot.img")
BEFORE=$(part_sha boot "$BOOT_SIZE")

say "miflash -s $DEVICE flash ROM --yes"
"${MIFLASH[@]}" -s "$DEVICE" flash "$WORK/rom" --yes

say "did the partitions change?"
AFTER=$(part_sha boot "$BOOT_SIZE")
IMAGE=$(sha256sum "$WORK/rom/images/boot.img" | cut -d' ' -f1)
echo "images/boot.img          $IMAGE"
echo "boot partition before    $BEFORE"
echo "boot partition after     $AFTER"
[ "$AFTER" = "$IMAGE" ] && [ "$BEFORE" != "$IMAGE" ] || { echo "demo: FAILED: boot partition does not hold images/boot.img" >&2; exit 1; }
if command -v simg2img >/dev/null; then
  simg2img "$WORK/rom/images/system.img" "$WORK/system.raw"
  SYS_SIZE=$(stat -c %s "$WORK/system.raw")
  echo "system.img (expanded)    $(sha256sum "$WORK/system.raw" | cut -d' ' -f1)"
  echo "system partition after   $(part_sha system "$SYS_SIZE")"
  [ "$(part_sha system "$SYS_SIZE")" = "$(sha256sum "$WORK/system.raw" | cut -d' ' -f1)" ] || { echo "demo: FAILED: system partition differs" >&2; exit 1; }
fi
echo "OK: the emulated device now holds the ROM's images"
