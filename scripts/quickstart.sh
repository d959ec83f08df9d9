#!/usr/bin/env bash
# The README's first command: install what is missing, then show passthru end to end on a
# simulated SR-IOV host with a real QEMU guest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx src/cli/main.ts quickstart "$@"
