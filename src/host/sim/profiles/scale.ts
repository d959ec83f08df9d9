/**
 * scale-16x256: 16 PFs with 256 VFs each (Intel E810, ice PF, iavf VFs), one PF per root
 * port. Generated rather than written out; the result is an ordinary profile in JSON form.
 */
export function scaleProfile(pfs = 16, vfs = 256): unknown {
  const hex2 = (n: number): string => n.toString(16).padStart(2, '0');
  return {
    name: `scale-${pfs}x${vfs}`,
    description: `${pfs} Intel E810 PFs (ice) with ${vfs} iavf VFs each, one per root port`,
    numaNodes: 2,
    drivers: ['vfio-pci'],
    devices: Array.from({ length: pfs }, (_, i) => {
      // Two buses per PF: 256 VFs from offset 8 run past function 0xff of the PF's bus.
      const bus = 0x10 + 2 * i;
      const node = i < pfs / 2 ? 0 : 1;
      return {
        slot: 1 + (i >> 3),
        function: i & 7,
        kind: 'root-port',
        vendor: '0x8086',
        device: '0x347a',
        class: '0x060400',
        driver: 'pcieport',
        numaNode: node,
        acs: true,
        multifunction: true,
        link: { speed: 16, width: 16 },
        secondaryBus: bus,
        children: [
          {
            slot: 0,
            function: 0,
            kind: 'endpoint',
            vendor: '0x8086',
            device: '0x1593',
            class: '0x020000',
            driver: 'ice',
            numaNode: node,
            flr: true,
            link: { speed: 16, width: 16 },
            netdevs: [
              {
                name: `ens${i}f0`,
                mac: `b4:96:91:00:${hex2(i)}:00`,
                devPort: 0,
                physPortId: `b4969100${hex2(i)}00`,
                operstate: 'up',
              },
            ],
            sriov: {
              totalVfs: vfs,
              numVfs: vfs,
              offset: 8,
              stride: 1,
              vfDevice: '0x1889',
              vfDriver: 'iavf',
              vfNetdev: `ens${i}f0v{vf}`,
            },
          },
        ],
      };
    }),
  };
}
