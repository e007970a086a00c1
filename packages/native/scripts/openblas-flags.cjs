// Prints the folder holding OpenBLAS's cblas.h (for binding.gyp), or nothing when absent.
const fs = require('node:fs');

const CANDIDATES = [
  process.env.SKD_OPENBLAS_INCLUDE,
  '/usr/include/x86_64-linux-gnu/openblas-pthread',
  '/usr/include/aarch64-linux-gnu/openblas-pthread',
  '/usr/include/openblas',
  '/usr/include/x86_64-linux-gnu',
  '/usr/include/aarch64-linux-gnu',
  '/usr/include',
  '/usr/local/include',
  '/opt/homebrew/opt/openblas/include',
].filter(Boolean);

function findOpenBlasInclude() {
  return CANDIDATES.find((dir) => fs.existsSync(`${dir}/cblas.h`));
}

if (require.main === module) process.stdout.write(findOpenBlasInclude() ?? '');
module.exports = { findOpenBlasInclude };
