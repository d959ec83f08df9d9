// Preloaded with --import: appends the URL of every module the process loads to the file named
// by PASSTHRU_RECORD_LOADS, one per line (the CLI start-up test reads it).
import { register } from 'node:module';

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  appendFileSync(process.env.PASSTHRU_RECORD_LOADS, url + '\\n');
  return next(url, context);
}`)}`,
);
