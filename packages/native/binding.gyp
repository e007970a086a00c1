{
  "targets": [
    {
      "target_name": "skd_native",
      "sources": ["csrc/skd_native.c"],
      "include_dirs": ["<!@(node scripts/openblas-flags.cjs --include)"],
      "libraries": ["-lopenblas", "-lm"],
      "cflags": ["-O3", "-march=native", "-std=c11", "-fno-math-errno"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
