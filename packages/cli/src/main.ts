#!/usr/bin/env node
import { main } from './program';

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // tfjs backends may keep handles open; the work is done and flushed.
  setImmediate(() => process.exit(code));
});
