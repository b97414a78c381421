#!/usr/bin/env bash
# Placeholder until the ROM demo lands: installs, builds and prints the version.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci
npm run build >/dev/null
node bin/miflash.js --version
