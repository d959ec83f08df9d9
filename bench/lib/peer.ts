import { spawnSync } from 'node:child_process';
import { accessSync, constants, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { run } from './figure.ts';

/**
 * libvirt 9.0 as a peer (Debian's packages, no systemd): bench/libvirt-peer/setup.sh starts a
 * libvirtd in a private mount namespace with its state under LIBVIRT_PEER_WORK. Each answer
 * says why when the peer cannot run here, so the rows that need it are skipped with that reason.
 */
const SETUP = join(import.meta.dirname, '..', 'libvirt-peer', 'setup.sh');

function onPath(bin: string): boolean {
  return (process.env['PATH'] ?? '').split(delimiter).some((d) => {
    try {
      accessSync(join(d, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

export interface Peer {
  readonly uri: string;
  /** virsh with this URI; `-t` for the API's own time of each command. */
  virsh(args: readonly string[]): string;
  stop(): void;
}

/** A libvirtd instance of the peer tool: 'a', or 'b' beside it (a migration's destination). */
export function startPeer(instance: 'a' | 'b' = 'a'): Peer | string {
  if (process.env['BENCH_LIBVIRT'] === '0') return 'BENCH_LIBVIRT=0';
  for (const bin of ['virsh', 'libvirtd', 'virtlogd', 'unshare', 'python3']) {
    if (!onPath(bin)) return `${bin} is not installed (libvirt 9.0: bash bench/libvirt-peer/setup.sh install)`;
  }
  if (process.getuid?.() !== 0) return 'the libvirt peer runs as root (private mount namespace)';
  const env = { ...process.env, LIBVIRT_PEER_WORK: process.env['LIBVIRT_PEER_WORK'] ?? '/var/tmp/passthru-bench-lv' };
  const started = spawnSync('bash', [SETUP, 'start', instance], { encoding: 'utf8', env });
  if (started.status !== 0)
    return `libvirtd did not start: ${(started.stderr || started.stdout).trim().split('\n').slice(-2).join(' ')}`;
  const uri = run('bash', [SETUP, 'uri', instance], env).trim();
  return {
    uri,
    virsh: (args) => run('virsh', ['-c', uri, ...args]),
    stop: () => {
      spawnSync('bash', [SETUP, 'stop', instance], { env });
    },
  };
}

/** The domain both sides define: q35, 256 MiB, one virtio NIC (user networking), TCG; no disk,
 *  so "running" is QEMU up and `cont` sent (the firmware then idles). libvirt-peer's peer1.xml
 *  with type='qemu'. */
export function peerXml(dir: string, name = 'peer1'): string {
  const file = join(dir, `${name}.xml`);
  writeFileSync(
    file,
    `<domain type='qemu'>
  <name>${name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <memballoon model='none'/>
  </devices>
</domain>
`,
  );
  return file;
}

/** The API times virsh -t prints, one per command, in ms. */
export function virshTimes(out: string): number[] {
  return [...out.matchAll(/\(Time: ([\d.]+) ms\)/g)].map((m) => Number(m[1]));
}
