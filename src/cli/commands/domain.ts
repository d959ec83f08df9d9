import type { CommandSpec } from '../spec.ts';

const load = () => import('../run/domain.ts');

export const domainCommands: readonly CommandSpec[] = [
  {
    name: 'define',
    description: 'define (or redefine) a domain from its XML',
    args: [{ name: '<file>', description: 'domain XML file' }],
    run: (inv) => load().then((m) => m.define(inv)),
  },
  {
    name: 'undefine',
    description: 'remove a domain definition',
    args: ['<name>'],
    run: (inv) => load().then((m) => m.undefine(inv)),
  },
  {
    name: 'start',
    description: 'start a defined domain',
    args: ['<name>'],
    run: (inv) => load().then((m) => m.start(inv)),
  },
  {
    name: 'destroy',
    description: 'stop a running domain at once and give its host devices back',
    args: ['<name>'],
    run: (inv) => load().then((m) => m.destroy(inv)),
  },
  {
    name: 'list',
    description: 'list domains (running ones unless --all)',
    options: [
      { flags: '--all', description: 'also the ones that are not running' },
      { flags: '--json', description: 'JSON output' },
    ],
    run: (inv) => load().then((m) => m.list(inv)),
  },
  {
    name: 'dumpxml',
    description: "print a domain's XML (live while it runs)",
    args: ['<name>'],
    options: [{ flags: '--inactive', description: 'the persistent definition, not the live one' }],
    run: (inv) => load().then((m) => m.dumpxml(inv)),
  },
];
