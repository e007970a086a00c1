/** Where the CLI writes: lines to stdout/stderr, and a progress line that redraws on a terminal. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
  progress(line: string): void;
  /** On a terminal: a block of lines redrawn in place (a followed sweep, a line per run). Absent elsewhere. */
  board?(lines: readonly string[]): void;
}

/**
 * Results go to stdout, everything else (progress, warnings, errors) to stderr, so `skd eval ... |
 * jq` reads only results. On a terminal the progress line redraws in place; otherwise (a log file,
 * CI) it is printed as a line at most every five seconds.
 */
export function terminalIo(): Io {
  const tty = process.stderr.isTTY === true;
  let lastPrinted = 0;
  let drawn = false;
  let boardLines = 0;
  const clear = () => {
    if (boardLines > 0) process.stderr.write(`\x1b[${boardLines}F\x1b[0J`);
    boardLines = 0;
    if (!drawn) return;
    process.stderr.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    out: (line) => {
      clear();
      process.stdout.write(`${line}\n`);
    },
    err: (line) => {
      clear();
      process.stderr.write(`${line}\n`);
    },
    progress: (line) => {
      if (tty) {
        process.stderr.write(`\r\x1b[2K${line}`);
        drawn = true;
      } else if (Date.now() - lastPrinted > 5000) {
        lastPrinted = Date.now();
        process.stderr.write(`${line}\n`);
      }
    },
    ...(tty
      ? {
          board: (lines: readonly string[]) => {
            clear();
            const width = process.stderr.columns ?? 120;
            process.stderr.write(lines.map((l) => `${l.slice(0, width - 1)}\n`).join(''));
            boardLines = lines.length;
          },
        }
      : {}),
  };
}
