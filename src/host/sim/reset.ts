import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePciConfig } from '../pci-config.ts';
import { BUS_DEVICES, initialResetMethods, list, readAttr, writeAttr } from './tree.ts';

/**
 * Function reset as the kernel does it (drivers/pci/pci.c, pci_reset_fn_methods): the methods a
 * function supports come from its config space (FLR, AF FLR, PM without No_Soft_Reset) and its
 * place (a bus reset needs the function alone on a non-root bus); `reset_method` lists them in
 * order, takes a list (each probed, EINVAL for one that does not work) or `default`; `reset`
 * runs the first that works, ENOTTY when none does. The sim lists `bus` for every function off
 * the root bus and checks that it is alone when the method is asked for or run (the kernel
 * probes it when the device is added, which depends on enumeration order).
 *
 * Every reset done is recorded in `<dir>/sim/resets`, one line "<BDF> <method>", so a test can
 * assert a reset happened (or did not): the kernel keeps no trace of one.
 */
export type SimResetMethod = 'flr' | 'af_flr' | 'pm' | 'bus';
const ORDER: readonly SimResetMethod[] = ['flr', 'af_flr', 'pm', 'bus'];

export const RESET_LOG = 'resets';

function works(root: string, address: string, m: SimResetMethod): boolean {
  const cfg = parsePciConfig(readFileSync(join(root, BUS_DEVICES, address, 'config')));
  switch (m) {
    case 'flr':
      return cfg?.pcie?.flr === true;
    case 'af_flr':
      return cfg?.afFlr === true;
    case 'pm':
      return cfg?.pmReset === true;
    case 'bus': {
      const bus = address.slice(0, -4);
      return !bus.endsWith(':00:') && list(root, BUS_DEVICES).filter((n) => n.startsWith(bus)).length === 1;
    }
  }
}

/** A write to `reset_method`: the error text, or undefined when accepted. */
export function setResetMethod(root: string, address: string, value: string): string | undefined {
  const file = `${BUS_DEVICES}/${address}/reset_method`;
  const v = value.trim();
  if (v === 'default') {
    const config = readFileSync(join(root, BUS_DEVICES, address, 'config'));
    writeAttr(root, file, initialResetMethods(config, Number.parseInt(address.slice(-7, -5), 16)));
    return undefined;
  }
  const names = v.split(/\s+/).filter((n) => n !== '');
  for (const n of names) {
    if (!(ORDER as readonly string[]).includes(n) || !works(root, address, n as SimResetMethod)) {
      return `Incorrect reset method '${n}'`;
    }
  }
  if (names.length === 0) return 'no reset method given';
  writeAttr(root, file, names.join(' '));
  return undefined;
}

/** A write of 1 to `reset`: the method used, or undefined when none works (ENOTTY). */
export function resetFunction(root: string, address: string): SimResetMethod | undefined {
  const listed = readAttr(root, `${BUS_DEVICES}/${address}/reset_method`);
  const methods = listed === undefined ? [] : (listed.split(/\s+/) as SimResetMethod[]);
  const m = methods.find((x) => ORDER.includes(x) && works(root, address, x));
  if (m !== undefined) appendFileSync(join(root, 'sim', RESET_LOG), `${address} ${m}\n`);
  return m;
}

/** The resets done so far, oldest first (tests). */
export function readResets(root: string): { address: string; method: SimResetMethod }[] {
  let text: string;
  try {
    text = readFileSync(join(root, 'sim', RESET_LOG), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const [address = '', method = 'flr'] = l.split(' ');
      return { address, method: method as SimResetMethod };
    });
}
