import { PassthruError } from './error.ts';

/** A MAC address, kept in its canonical lower-case colon form. */
export type MacAddress = string & { readonly __brand: 'MacAddress' };

export const ZERO_MAC = '00:00:00:00:00:00' as MacAddress;

export function parseMac(text: string): MacAddress {
  if (!/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new PassthruError('INVALID_ARG', `invalid MAC address '${text}'`, {
      hint: "write six hex pairs separated by colons, for example '52:54:00:00:00:01'",
    });
  }
  return text.toLowerCase() as MacAddress;
}

/** The first octet's low bit: a multicast address cannot be a NIC's address. */
export function isMulticastMac(mac: MacAddress): boolean {
  return (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1;
}

/** A unicast MAC for a guest NIC; libvirt refuses multicast ones the same way. */
export function parseUnicastMac(text: string): MacAddress {
  const mac = parseMac(text);
  if (isMulticastMac(mac)) {
    throw new PassthruError('INVALID_ARG', `MAC address '${text}' is a multicast address and cannot be given to a NIC`);
  }
  return mac;
}
