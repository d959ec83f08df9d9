import type { Command } from 'commander';
import { DEFAULT_SOCKET } from '../protocol/wire.ts';
import { Client } from './client.ts';

/** What every command gets: the API client for the -c socket, and where to print. */
export interface CliContext {
  client(): Client;
  out(text: string): void;
}

export function contextOf(program: Command): CliContext {
  return {
    client: () =>
      new Client(program.opts<{ connect?: string }>().connect ?? process.env['PASSTHRU_SOCKET'] ?? DEFAULT_SOCKET),
    out: (text) => process.stdout.write(text),
  };
}

/** Every command module has this shape. */
export interface CommandModule {
  register(program: Command, ctx: CliContext): void;
}
