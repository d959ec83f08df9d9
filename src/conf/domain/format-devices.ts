import { type FormatFlags, writesActualAsDevice, writesAlias } from '../format-flags.ts';
import { type OutElement, out } from '../xml/tree.ts';
import { carriedAddress, toOut } from './generic.ts';
import {
  guestAddressOut,
  hostdevDriverOut,
  pciAttrs,
  pciSourceOut,
  romOut,
  teamingOut,
  virtualPortOut,
  vfBandwidthOut,
  vlanOut,
  yesNoOut,
} from './format-parts.ts';
import type {
  CharDevDef,
  ControllerDef,
  DeviceInfo,
  HostdevDef,
  InterfaceDef,
  OtherDeviceDef,
  PoolHostdevDef,
  StandbyDef,
} from './types.ts';

type Kids = (OutElement | undefined | false)[];

/** boot, alias, rom, address: libvirt's virDomainDeviceInfoFormat order. */
export function infoOut(info: DeviceInfo, flags: FormatFlags): Kids {
  return [
    info.bootOrder !== undefined && out('boot', [['order', info.bootOrder]]),
    writesAlias(flags, info.alias) && out('alias', [['name', info.alias]]),
    romOut(info.rom),
    guestAddressOut(info.guestAddress),
  ];
}

export function hostdevOut(h: HostdevDef | PoolHostdevDef, flags: FormatFlags): OutElement {
  const managed = 'pool' in h ? h.managed : h.source.managed;
  const driver = 'pool' in h ? h.driver : h.source.driver;
  let source: OutElement;
  if ('pool' in h)
    source = out('source', [
      ['pool', h.pool],
      ['tags', h.tags?.join(',')],
    ]);
  else if (h.source.pool !== undefined) {
    // The device a pool gave is this host's runtime state: the inactive definition keeps only the
    // pool, and so does the migratable one (the destination takes a device from its own pool).
    const addr = out('address', pciAttrs(h.source.address));
    source = out(
      'source',
      [
        ['pool', h.source.pool],
        ['tags', h.source.poolTags?.join(',')],
      ],
      [!flags.inactive && !flags.migratable && addr],
    );
  } else source = pciSourceOut(h.source.address, false);
  return out(
    'hostdev',
    [
      ['mode', h.mode],
      ['type', h.type],
      ['managed', managed ? 'yes' : 'no'],
      ['assigned', h.assigned === undefined ? undefined : h.assigned ? 'yes' : 'no'],
    ],
    [
      hostdevDriverOut(driver),
      source,
      ...(h.netdevs ?? []).map((n) =>
        out(
          'netdev',
          [
            ['port', n.port],
            ['trustGuestRxFilters', yesNoOut(n.trustGuestRxFilters)],
            ['spoofCheck', yesNoOut(n.spoofCheck)],
          ],
          [
            n.mac !== undefined && out('mac', [['address', n.mac]]),
            vlanOut(n.vlan),
            n.linkState !== undefined && out('link', [['state', n.linkState]]),
            vfBandwidthOut(n.bandwidth),
          ],
        ),
      ),
      teamingOut(h.teaming),
      ...infoOut(h, flags),
    ],
  );
}

/** [seed] `<standby>` (types.ts StandbyDef): the macvtap and its parent are this host's, written
 *  in live and status XML only. */
function standbyOut(s: StandbyDef | undefined, flags: FormatFlags): OutElement | undefined {
  if (!s) return undefined;
  const here = !flags.inactive && !flags.migratable;
  return out(
    'standby',
    [],
    [
      here &&
        s.parent !== undefined &&
        out('source', [
          ['dev', s.parent],
          ['mode', 'bridge'],
        ]),
      here && s.targetDev !== undefined && out('target', [['dev', s.targetDev]]),
      writesAlias(flags, s.alias) && out('alias', [['name', s.alias]]),
      guestAddressOut(s.guestAddress),
    ],
  );
}

export function interfaceOut(i: InterfaceDef, flags: FormatFlags): OutElement {
  const mac = i.mac !== undefined && out('mac', [['address', i.mac]]);
  // A network's VF shown as a plain hostdev interface (live XML) has no standby to show.
  const plainVf = i.type === 'network' && i.actual?.type === 'hostdev' && writesActualAsDevice(flags);
  const tail: Kids = [
    i.targetDev !== undefined && out('target', [['dev', i.targetDev]]),
    i.model !== undefined && out('model', [['type', i.model]]),
    i.virtioDriver && toOut(i.virtioDriver),
    i.linkState !== undefined && out('link', [['state', i.linkState]]),
    i.mtu !== undefined && out('mtu', [['size', i.mtu]]),
    teamingOut(i.teaming),
    (i.type === 'hostdev-hybrid' || i.type === 'network') && !plainVf && standbyOut(i.standby, flags),
    ...infoOut(i, flags),
  ];
  const trust: [string, string | undefined] = [
    'trustGuestRxFilters',
    i.trustGuestRxFilters === undefined ? undefined : i.trustGuestRxFilters ? 'yes' : 'no',
  ];
  const nets: Kids = [vlanOut(i.vlan), virtualPortOut(i.virtualport)];
  switch (i.type) {
    case 'hostdev':
    case 'hostdev-hybrid':
      return out(
        'interface',
        [
          ['type', i.type],
          ['managed', i.source.managed ? 'yes' : undefined],
          trust,
          ['spoofCheck', yesNoOut(i.spoofCheck)],
        ],
        [
          mac,
          hostdevDriverOut(i.source.driver),
          pciSourceOut(i.source.address, true),
          ...nets,
          vfBandwidthOut(i.bandwidth),
          ...tail,
        ],
      );
    case 'network': {
      const a = i.actual;
      if (a && writesActualAsDevice(flags)) {
        // Live XML shows the VF the network gave, as libvirt's "publicActual" does (a hybrid
        // network's as a hostdev-hybrid interface, with its standby).
        const actualTrust = a.trustGuestRxFilters ?? i.trustGuestRxFilters;
        return out(
          'interface',
          [
            ['type', a.type],
            ['managed', a.source.managed ? 'yes' : undefined],
            ['trustGuestRxFilters', actualTrust === undefined ? undefined : actualTrust ? 'yes' : 'no'],
            ['spoofCheck', yesNoOut(a.spoofCheck)],
          ],
          [
            mac,
            hostdevDriverOut(a.source.driver),
            pciSourceOut(a.source.address, true),
            vlanOut(a.vlan ?? i.vlan),
            virtualPortOut(a.virtualport ?? i.virtualport),
            vfBandwidthOut(a.bandwidth ?? i.bandwidth),
            // The interface's own <link> is in the tail; the network's shows when it has none.
            i.linkState === undefined && a.linkState !== undefined && out('link', [['state', a.linkState]]),
            ...tail,
          ],
        );
      }
      const actual =
        a &&
        flags.status &&
        out(
          'actual',
          [
            ['type', a.type],
            ['managed', a.source.managed ? 'yes' : undefined],
            [
              'trustGuestRxFilters',
              a.trustGuestRxFilters === undefined ? undefined : a.trustGuestRxFilters ? 'yes' : 'no',
            ],
            ['spoofCheck', yesNoOut(a.spoofCheck)],
          ],
          [
            hostdevDriverOut(a.source.driver),
            pciSourceOut(a.source.address, true),
            vlanOut(a.vlan),
            virtualPortOut(a.virtualport),
            vfBandwidthOut(a.bandwidth),
            a.linkState !== undefined && out('link', [['state', a.linkState]]),
          ],
        );
      const source = out('source', [
        ['network', i.network],
        ['portgroup', i.portgroup],
        ['portid', flags.inactive ? undefined : i.portid],
      ]);
      return out(
        'interface',
        [['type', 'network'], trust],
        [mac, source, actual, ...nets, vfBandwidthOut(i.bandwidth), ...tail],
      );
    }
    case 'bridge':
      return out(
        'interface',
        [['type', i.type], trust],
        [mac, out('source', [['bridge', i.bridge]]), ...nets, ...tail],
      );
    case 'direct':
      return out(
        'interface',
        [['type', i.type], trust],
        [
          mac,
          out('source', [
            ['dev', i.dev],
            ['mode', i.mode],
          ]),
          ...nets,
          ...tail,
        ],
      );
    case 'user':
    case 'ethernet':
      return out('interface', [['type', i.type], trust], [mac, ...nets, ...tail]);
  }
}

export function controllerOut(c: ControllerDef, flags: FormatFlags): OutElement {
  const t = c.target;
  const target =
    t &&
    out('target', [
      ['chassisNr', t.chassisNr],
      ['chassis', t.chassis],
      ['port', t.port === undefined ? undefined : `0x${t.port.toString(16)}`],
      ['busNr', t.busNr],
      ['hotplug', t.hotplug === undefined ? undefined : t.hotplug ? 'on' : 'off'],
    ]);
  return out(
    'controller',
    [
      ['type', c.type],
      ['index', c.index],
      ['model', c.model],
      ['ports', c.ports],
      ['vectors', c.vectors],
    ],
    [
      c.modelName !== undefined && out('model', [['name', c.modelName]]),
      target,
      writesAlias(flags, c.alias) && out('alias', [['name', c.alias]]),
      guestAddressOut(c.address),
    ],
  );
}

export function charDevOut(name: 'serial' | 'console', c: CharDevDef, flags: FormatFlags): OutElement {
  const target =
    (c.targetType !== undefined || c.targetPort !== undefined || c.targetModel !== undefined) &&
    out(
      'target',
      [
        ['type', c.targetType],
        ['port', c.targetPort],
      ],
      [c.targetModel !== undefined && out('model', [['name', c.targetModel]])],
    );
  return out(
    name,
    [['type', c.type]],
    [
      c.path !== undefined &&
        out('source', [
          ['mode', c.mode],
          ['path', c.path],
          ['append', c.append === undefined ? undefined : c.append ? 'on' : 'off'],
        ]),
      target,
      writesAlias(flags, c.alias) && out('alias', [['name', c.alias]]),
      guestAddressOut(c.guestAddress),
    ],
  );
}

/** A carried device as read; a guest address the planner gave it (none in the XML) goes last,
 *  where libvirt writes a device's address. */
export function otherOut(o: OtherDeviceDef): OutElement {
  const el = toOut(o.xml);
  if (o.guestAddress === undefined || carriedAddress(o.xml) !== undefined) return el;
  return { ...el, children: [...(el.children ?? []), guestAddressOut(o.guestAddress)] };
}
