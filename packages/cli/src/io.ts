/** Where the CLI writes: lines to stdout/stderr, and a progress line that redraws on a terminal. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  progress(line: string): void;
}

export function terminalIo(): Io {
  const tty = process.stdout.isTTY === true;
  let lastPrinted = 0;
  return {
    out: (line) => process.stdout.write(`${tty ? '\r\x1b[2K' : ''}${line}\n`),
    err: (line) => process.stderr.write(`${tty ? '\r\x1b[2K' : ''}${line}\n`),
    progress: (line) => {
      if (tty) process.stdout.write(`\r\x1b[2K${line}`);
      else if (Date.now() - lastPrinted > 5000) {
        lastPrinted = Date.now();
        process.stdout.write(`${line}\n`);
      }
    },
  };
}
