import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

/**
 * A scripted QMP monitor on a unix socket: it greets like QEMU 7.2, answers qmp_capabilities,
 * and hands every other command to the test's script (libvirt's qemumonitortestutils idea).
 */
export type Msg = { execute: string; arguments?: Record<string, unknown>; id?: string };
export type Script = (msg: Msg, peer: Peer) => void;

export interface Peer {
  send(obj: unknown): void;
  end(): void;
}

export interface FakeQmp {
  readonly path: string;
  readonly server: Server;
  readonly received: Msg[];
}

const GREETING = {
  QMP: { version: { qemu: { micro: 19, minor: 2, major: 7 }, package: 'Debian' }, capabilities: ['oob'] },
};

let n = 0;

/** `greeting: null` sends none (a peer that never greets). */
export async function fakeQmp(dir: string, script: Script, opts: { greeting?: unknown } = {}): Promise<FakeQmp> {
  const path = join(dir, `qmp${n++}.sock`);
  const received: Msg[] = [];
  const server = createServer((sock: Socket) => {
    const peer: Peer = {
      send: (obj) => sock.write(`${JSON.stringify(obj)}\r\n`),
      end: () => sock.destroy(),
    };
    if (opts.greeting !== null) peer.send(opts.greeting ?? GREETING);
    let buf = '';
    sock.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, i)) as Msg;
        buf = buf.slice(i + 1);
        received.push(msg);
        if (msg.execute === 'qmp_capabilities') peer.send({ return: {}, id: msg.id });
        else script(msg, peer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, server, received };
}
