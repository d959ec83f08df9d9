#!/usr/bin/env node
import { runCli } from './program.ts';
import { renderError } from './render.ts';

runCli(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(renderError(err));
    process.exit(1);
  },
);
