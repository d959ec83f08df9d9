#!/usr/bin/env bash
# What an operator does, in a temporary prefix: `npm pack`, `npm install -g ./passthru-*.tgz`,
# then the installed commands answer, the installed daemon serves a simulated host, and the
# shipped systemd unit passes `systemd-analyze verify` against the installed passthrud.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'pack-check: %s\n' "$*" >&2; }
work=$(mktemp -d)
daemon=''
cleanup() {
  if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

say "npm pack (builds dist/ in prepack)"
tgz=$(npm pack --silent --pack-destination "$work" | tail -1)
say "npm install -g $tgz into $work/prefix"
npm install -g --prefix "$work/prefix" --no-audit --no-fund --loglevel=error "$work/$tgz" >&2
bin="$work/prefix/bin"
pkg="$work/prefix/lib/node_modules/passthru"

"$bin/passthru" --help | grep -q '^Usage: passthru '
"$bin/passthrud" --help | grep -q '^Usage: passthrud '
"$bin/passthrud" --config '' --print-config | grep -q '^socket = "/run/passthru/passthru.sock" *# default$'

# The installed commands do real work: a simulated host, the daemon on it, the CLI asking it.
"$bin/passthru" sim create "$work/host" --profile intel-x710-2port >/dev/null
PASSTHRU_CONFIG='' "$bin/passthrud" --host "sim:$work/host" --state-dir "$work/state" \
  --socket "$work/p.sock" >"$work/passthrud.log" 2>&1 &
daemon=$!
for _ in $(seq 200); do
  "$bin/passthru" -c "$work/p.sock" list --all >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin/passthru" -c "$work/p.sock" nodedev-list --cap pci | grep -q pci_0000_06_00_0 ||
  { cat "$work/passthrud.log" >&2; exit 1; }

# The unit names `passthrud` on systemd's search path; verify it against the installed one.
unit="$work/passthrud.service"
sed "s|^ExecStart=passthrud|ExecStart=$bin/passthrud|" "$pkg/systemd/passthrud.service" >"$unit"
grep -q "^ExecStart=$bin/passthrud" "$unit"
out=$(systemd-analyze verify "$unit" 2>&1) || { printf '%s\n' "$out" >&2; exit 1; }
if [ -n "$out" ]; then printf '%s\n' "$out" >&2; exit 1; fi
say "ok: $tgz installs passthru and passthrud; the unit verifies"
