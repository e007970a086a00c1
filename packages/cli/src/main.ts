#!/usr/bin/env node
import { main } from './program';

// A reader that stops early (`skd kinds | head`) closes the pipe: that ends the output, not the world.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
  // tfjs backends may keep handles open; the work is done and flushed.
  setImmediate(() => process.exit(code));
});
