// Finds the BLAS the native kernels link against, for binding.gyp and the install script.
// oneDNN (Debian: libdnnl-dev) is preferred: its sgemm is the fastest on the CPUs measured here
// (docs/performance.md) and it threads with OpenMP, the same runtime as skd's own kernels.
// OpenBLAS (libopenblas-dev) is the fallback. Nothing found: the addon is not built.
//   node blas-flags.cjs --include | --libraries | --defines | --name
const fs = require('node:fs');

const ONEDNN_INCLUDES = [process.env.SKD_DNNL_INCLUDE, '/usr/include', '/usr/local/include', '/opt/homebrew/include'].filter(Boolean);
const OPENBLAS_INCLUDES = [
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

/** { name, include, libraries, defines } of the BLAS to use, or undefined. SKD_BLAS=openblas forces the fallback. */
function findBlas() {
  const want = process.env.SKD_BLAS;
  if (want !== 'openblas') {
    const include = ONEDNN_INCLUDES.find((dir) => fs.existsSync(`${dir}/dnnl.h`));
    if (include) return { name: 'oneDNN', include, libraries: ['-ldnnl'], defines: ['SKD_BLAS_DNNL=1'] };
  }
  const include = OPENBLAS_INCLUDES.find((dir) => fs.existsSync(`${dir}/cblas.h`));
  if (include) return { name: 'OpenBLAS', include, libraries: ['-lopenblas'], defines: ['SKD_BLAS_OPENBLAS=1'] };
  return undefined;
}

if (require.main === module) {
  const blas = findBlas();
  const what = process.argv[2];
  const out = !blas
    ? ''
    : what === '--include'
      ? blas.include
      : what === '--libraries'
        ? blas.libraries.join(' ')
        : what === '--defines'
          ? blas.defines.join(' ')
          : blas.name;
  process.stdout.write(out);
}
module.exports = { findBlas };
