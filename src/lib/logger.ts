import { pino, type Logger as PinoLogger } from 'pino';

/** Structured logs: JSON lines (to journald through stdout), child loggers carry the object. */
export type Logger = PinoLogger;

export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { app: 'passthrud' } });
}

export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
