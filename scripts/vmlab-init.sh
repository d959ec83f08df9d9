#!/busybox/bin/sh
# PID 1 of passthru's VM-lab guest (the initramfs's /init, built by vmlab-setup.sh).
# Root = initramfs tmpfs + the host's /usr and /etc over 9p (read-only, tmpfs overlay on top) +
# the guest kernel's module tree over 9p. Runs /job/cmd.sh with the host's bash, writes its
# output to /job/out and its exit code to /job/rc, then powers off.
export PATH=/busybox/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
KVER=$(cat /KVER)
while read -r m; do insmod "/mods/$m" || echo "vmlab: insmod $m failed"; done </mods/order
mount -t tmpfs -o mode=755 run /run
O="trans=virtio,version=9p2000.L,msize=512000"
for fs in usr etc; do
  mkdir -p /mnt/$fs /run/ov/$fs/up /run/ov/$fs/wk /$fs
  mount -t 9p -o $O,ro,cache=loose $fs /mnt/$fs || echo "vmlab: 9p $fs failed"
  mount -t overlay -o lowerdir=/mnt/$fs,upperdir=/run/ov/$fs/up,workdir=/run/ov/$fs/wk overlay /$fs ||
    mount --bind /mnt/$fs /$fs
done
mkdir -p /usr/lib/modules/$KVER
mount -t 9p -o $O,ro,cache=loose mods /usr/lib/modules/$KVER || echo "vmlab: 9p modules failed"
mount -t 9p -o $O,cache=none job /job || echo "vmlab: 9p job failed"
for l in bin sbin lib lib64; do ln -s usr/$l /$l; done
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /dev/pts /dev/shm /var
mount -t devpts -o ptmxmode=666 devpts /dev/pts
mount -t tmpfs shm /dev/shm
mount -t tmpfs var /var && mkdir -p /var/tmp /var/lib /var/log && ln -s /run /var/run
ln -s /proc/self/fd /dev/fd
echo /sbin/modprobe >/proc/sys/kernel/modprobe
# No udev: load modules for devices present now and, through a uevent listener, for devices
# that appear later (SR-IOV VFs: igbvf binds only if its module gets loaded).
printf '#!/busybox/bin/sh\n[ "$ACTION" = add ] && [ -n "$MODALIAS" ] && exec /sbin/modprobe -q -b "$MODALIAS"\n' >/run/hotplug
chmod +x /run/hotplug
uevent /run/hotplug >/dev/null 2>&1 &
/sbin/modprobe -a -q -b $(sort -u /sys/bus/*/devices/*/modalias 2>/dev/null) 2>/dev/null
hostname vmlab
ip link set lo up
for a in $(cat /proc/cmdline); do
  case "$a" in vmlab.share=*)
    v=${a#vmlab.share=}; tag=${v%%:*}; rest=${v#*:}; p=${rest%:*}; mode=${rest##*:}
    # A read-only share does not change while the guest runs: cache it like /usr. node loads the
    # daemon from it with thousands of stats and reads; with cache=none that took 86 s of a
    # daemon's start under TCG, with cache=loose about 20 s.
    cache=none; [ "$mode" = ro ] && cache=loose
    mkdir -p "$p" && mount -t 9p -o $O,$mode,cache=$cache "$tag" "$p" || echo "vmlab: share $tag failed";;
  esac
done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/busybox/bin HOME=/root LANG=C.UTF-8
cut -d' ' -f1 /proc/uptime >/job/uptime_at_cmd
cd /root
/usr/bin/bash /job/cmd.sh >/job/out 2>&1 </dev/null
echo $? >/job/rc
sync
poweroff -f
