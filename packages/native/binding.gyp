{
  "targets": [],
  "conditions": [
    [
      "target_arch=='x64'",
      {
        "targets": [
          {
            "target_name": "skd_native_avx512",
            "sources": [
              "csrc/skd_native.c",
              "csrc/args.c",
              "csrc/blas.c",
              "csrc/gemm.c",
              "csrc/threads.c",
              "csrc/elementwise.c",
              "csrc/reduce.c",
              "csrc/gather.c",
              "csrc/linear.c",
              "csrc/half.c",
              "csrc/layer_norm.c",
              "csrc/rms_norm.c",
              "csrc/gated.c",
              "csrc/attention.c",
              "csrc/cached_attention.c",
              "csrc/rotary.c",
              "csrc/gpt_decode.c",
              "csrc/softmax.c",
              "csrc/divergence.c",
              "csrc/adamw.c",
              "csrc/sampling.c"
            ],
            "include_dirs": [
              "<!@(node scripts/blas-flags.cjs --include)"
            ],
            "defines": [
              "NAPI_VERSION=8",
              "<!@(node scripts/blas-flags.cjs --defines)"
            ],
            "libraries": [
              "<!@(node scripts/blas-flags.cjs --libraries)",
              "-lm",
              "-fopenmp"
            ],
            "cflags": [
              "-O3",
              "-std=gnu11",
              "-fno-math-errno",
              "-fno-trapping-math",
              "-fopenmp",
              "-march=x86-64-v4",
              "-mtune=generic"
            ],
            "ldflags": [
              "-fopenmp"
            ]
          },
          {
            "target_name": "skd_native_avx2",
            "sources": [
              "csrc/skd_native.c",
              "csrc/args.c",
              "csrc/blas.c",
              "csrc/gemm.c",
              "csrc/threads.c",
              "csrc/elementwise.c",
              "csrc/reduce.c",
              "csrc/gather.c",
              "csrc/linear.c",
              "csrc/half.c",
              "csrc/layer_norm.c",
              "csrc/rms_norm.c",
              "csrc/gated.c",
              "csrc/attention.c",
              "csrc/cached_attention.c",
              "csrc/rotary.c",
              "csrc/gpt_decode.c",
              "csrc/softmax.c",
              "csrc/divergence.c",
              "csrc/adamw.c",
              "csrc/sampling.c"
            ],
            "include_dirs": [
              "<!@(node scripts/blas-flags.cjs --include)"
            ],
            "defines": [
              "NAPI_VERSION=8",
              "<!@(node scripts/blas-flags.cjs --defines)"
            ],
            "libraries": [
              "<!@(node scripts/blas-flags.cjs --libraries)",
              "-lm",
              "-fopenmp"
            ],
            "cflags": [
              "-O3",
              "-std=gnu11",
              "-fno-math-errno",
              "-fno-trapping-math",
              "-fopenmp",
              "-march=x86-64-v3",
              "-mtune=generic"
            ],
            "ldflags": [
              "-fopenmp"
            ]
          },
          {
            "target_name": "skd_native_baseline",
            "sources": [
              "csrc/skd_native.c",
              "csrc/args.c",
              "csrc/blas.c",
              "csrc/gemm.c",
              "csrc/threads.c",
              "csrc/elementwise.c",
              "csrc/reduce.c",
              "csrc/gather.c",
              "csrc/linear.c",
              "csrc/half.c",
              "csrc/layer_norm.c",
              "csrc/rms_norm.c",
              "csrc/gated.c",
              "csrc/attention.c",
              "csrc/cached_attention.c",
              "csrc/rotary.c",
              "csrc/gpt_decode.c",
              "csrc/softmax.c",
              "csrc/divergence.c",
              "csrc/adamw.c",
              "csrc/sampling.c"
            ],
            "include_dirs": [
              "<!@(node scripts/blas-flags.cjs --include)"
            ],
            "defines": [
              "NAPI_VERSION=8",
              "<!@(node scripts/blas-flags.cjs --defines)"
            ],
            "libraries": [
              "<!@(node scripts/blas-flags.cjs --libraries)",
              "-lm",
              "-fopenmp"
            ],
            "cflags": [
              "-O3",
              "-std=gnu11",
              "-fno-math-errno",
              "-fno-trapping-math",
              "-fopenmp",
              "-march=x86-64-v2",
              "-mtune=generic"
            ],
            "ldflags": [
              "-fopenmp"
            ]
          }
        ]
      },
      {
        "targets": [
          {
            "target_name": "skd_native",
            "sources": [
              "csrc/skd_native.c",
              "csrc/args.c",
              "csrc/blas.c",
              "csrc/gemm.c",
              "csrc/threads.c",
              "csrc/elementwise.c",
              "csrc/reduce.c",
              "csrc/gather.c",
              "csrc/linear.c",
              "csrc/half.c",
              "csrc/layer_norm.c",
              "csrc/rms_norm.c",
              "csrc/gated.c",
              "csrc/attention.c",
              "csrc/cached_attention.c",
              "csrc/rotary.c",
              "csrc/gpt_decode.c",
              "csrc/softmax.c",
              "csrc/divergence.c",
              "csrc/adamw.c",
              "csrc/sampling.c"
            ],
            "include_dirs": [
              "<!@(node scripts/blas-flags.cjs --include)"
            ],
            "defines": [
              "NAPI_VERSION=8",
              "<!@(node scripts/blas-flags.cjs --defines)"
            ],
            "libraries": [
              "<!@(node scripts/blas-flags.cjs --libraries)",
              "-lm",
              "-fopenmp"
            ],
            "cflags": [
              "-O3",
              "-march=native",
              "-std=gnu11",
              "-fno-math-errno",
              "-fno-trapping-math",
              "-fopenmp"
            ],
            "ldflags": [
              "-fopenmp"
            ]
          }
        ]
      }
    ]
  ]
}
