import { DEFAULT_SOCKET } from '../protocol/wire.ts';
import { Client } from './client.ts';

/** What every command gets: the API client for the -c socket, and where to print. */
export interface CliContext {
  client(): Client;
  out(text: string): void;
}

export function contextOf(connect: string | undefined): CliContext {
  return {
    client: () => new Client(connect ?? process.env['PASSTHRU_SOCKET'] ?? DEFAULT_SOCKET),
    out: (text) => process.stdout.write(text),
  };
}
