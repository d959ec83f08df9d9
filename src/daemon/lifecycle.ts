import { assertNever } from '../lib/assert-never.ts';
import { PassthruError } from '../conf/error.ts';
import type { DomainState } from '../protocol/wire.ts';
import type { Action } from './actions.ts';

/** Which domain actions each lifecycle state allows: the whole matrix in one switch. */
export function checkAllowed(action: Action, name: string, state: DomainState): void {
  const refuse = (why: string): never => {
    throw new PassthruError('OPERATION_INVALID', `cannot ${action.kind} domain ${name}: ${why}`);
  };
  switch (action.kind) {
    case 'start':
      if (state !== 'shutoff' && state !== 'crashed') refuse(`it is ${state}`);
      return;
    case 'destroy': // a paused guest too, as libvirt
      if (state === 'shutoff' || state === 'crashed') refuse('it is not running');
      if (state === 'stopping') refuse('it is already stopping');
      return;
    case 'migrate':
      if (state !== 'running') refuse(state === 'migrating' ? 'it is already migrating' : `it is ${state}`);
      return;
    case 'migrateIncoming':
      if (state !== 'shutoff' && state !== 'crashed') refuse(`it is ${state} on the destination`);
      return;
    case 'migrateFinish':
      // running: a finish asked again (the source's daemon restarted); destination.ts answers it.
      if (state !== 'migrating' && state !== 'shutoff' && state !== 'running') refuse(`it is ${state}, not arriving`);
      return;
    case 'migratePlug':
      if (state !== 'running') refuse(`it is ${state}`);
      return;
    case 'undefine':
      if (state !== 'shutoff' && state !== 'crashed') refuse(`it is ${state}; destroy it first`);
      return;
    case 'console':
    case 'suspend':
    case 'shutdown':
    case 'reboot':
      if (state !== 'running') refuse(state === 'paused' ? 'it is paused; resume it first' : 'it is not running');
      return;
    case 'resume':
      if (state !== 'paused') refuse('it is not paused');
      return;
    case 'dominfo':
    case 'autostart':
      return;
    case 'attachDevice':
    case 'detachDevice':
    case 'detachDeviceAlias':
      // The live domain changes only while it runs; its definition at any settled state.
      if (state === 'starting' || state === 'stopping') refuse(`it is ${state}`);
      if (action.live === true && state !== 'running')
        refuse('it is not running (use --config to change its definition)');
      return;
    case 'domiflist':
    case 'domxmlToNative':
    case 'define': // as libvirt: a running domain's new definition applies at its next start
    case 'dumpxml':
    case 'list':
    case 'nodedevList':
    case 'nodedevDumpxml':
    case 'nodedevVfTable':
    case 'nodedevDetach':
    case 'nodedevReattach':
    case 'nodedevReset':
    case 'nodedevCheck':
    case 'nodedevSriov':
    case 'nodedevRelease':
    case 'domhostdev':
    case 'poolDefine':
    case 'poolUndefine':
    case 'poolStart':
    case 'poolDestroy':
    case 'poolAutostart':
    case 'poolList':
    case 'poolDumpxml':
    case 'poolInfo':
    case 'migrateCheck':
    case 'migrateRenew':
    case 'metrics':
    case 'audit':
    case 'version':
    case 'netPortCreate':
    case 'netPortDelete':
    case 'netPortList':
    case 'netPortDumpxml':
      return;
    default:
      assertNever(action);
  }
}
