# Sourced by the *-checks.sh scripts that run INSIDE the VM-lab guest (in /work/p, the repository):
# the igb PF with two VFs, and the built daemon (dist/) on the real kernel with its CLI.
cd /work/p
PF=$(for d in /sys/bus/pci/devices/*; do [ "$(cat "$d/device")" = 0x10c9 ] && basename "$d"; done | head -1)
NET=$(ls "/sys/bus/pci/devices/$PF/net" | head -1)
ip link set "$NET" up
echo 2 >"/sys/bus/pci/devices/$PF/sriov_numvfs"
for i in $(seq 100); do [ -e "/sys/bus/pci/devices/$PF/virtfn1/net" ] && break; sleep 0.1; done
ST=/tmp/passthru-state; SOCK=/tmp/passthru.sock
P() { node dist/cli/passthru.js -c "$SOCK" "$@"; }
DOMAINS=""

# start_daemon [OPTION...]: passthrud --host linux with these options; prints "CHECK daemon 1"
# once its API answers, or "CHECK daemon 0", its log's tail, stops the lab and exits 1. The built
# daemon and CLI (the test runs `npm run build` on the host first): under TCG, tsx compiling some
# 300 modules at each start took longer than the wait below.
start_daemon() {
  node dist/src/daemon/main.js --host linux --state-dir "$ST" --socket "$SOCK" "$@" >/tmp/passthrud.log 2>&1 &
  DPID=$!
  # Under TCG (and a busy host) the daemon takes a while; it is up when its API answers.
  local up=0
  for i in $(seq 240); do
    if [ -S "$SOCK" ] && P list --all >/dev/null 2>&1; then up=1; break; fi
    sleep 1
  done
  echo "CHECK daemon $up"
  echo "TIME daemon ${SECONDS}s"
  if [ "$up" != 1 ]; then
    tail -20 /tmp/passthrud.log
    stop_lab
    exit 1
  fi
}

# Destroys the domains named in DOMAINS, stops the daemon, disables SR-IOV.
stop_lab() {
  # Never leave a VF held by a QEMU: disabling SR-IOV would wait for it forever.
  for d in $DOMAINS; do P destroy "$d" >/dev/null 2>&1; done
  kill "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  timeout 30 sh -c "echo 0 >/sys/bus/pci/devices/$PF/sriov_numvfs"
}
