#!/usr/bin/env python3
"""One-time scaffolder for the workspace packages' boilerplate (package.json, project.json, tsconfigs,
jest config). Kept so the layout of a package is written down in one place; it never overwrites."""
import json, os, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF = "4.22.0"

PACKAGES = {
    "core": dict(tags=["layer:core", "purity:pure"], deps={"zod": "^4.1.12", "@tensorflow/tfjs-core": TF},
                 desc="Contracts of skd: interfaces, typed injection tokens, errors, the seeded RNG, run events."),
    "backend": dict(tags=["layer:platform", "purity:pure"],
                    deps={"@skd/core": "*", "@tensorflow/tfjs-core": TF, "@tensorflow/tfjs-backend-wasm": TF, "@tensorflow/tfjs-backend-cpu": TF},
                    desc="Selects and initialises the TensorFlow.js backend (tfjs-node-gpu, tfjs-node, wasm, cpu) and reports why."),
    "divergences": dict(tags=["layer:math", "purity:pure"], deps={"@skd/core": "*", "@tensorflow/tfjs-core": TF, "zod": "^4.1.12"},
                        desc="Token-level divergences for knowledge distillation and the one shared loss assembly."),
    "models": dict(tags=["layer:component"], deps={"@skd/core": "*", "@tensorflow/tfjs-core": TF, "zod": "^4.1.12"},
                   desc="Language models, KV-cache generation, tokenizers and checkpoints."),
    "samplers": dict(tags=["layer:component"], deps={"@skd/core": "*", "@tensorflow/tfjs-core": TF, "zod": "^4.1.12"},
                     desc="KD data samplers: supervised, SeqKD, on-policy, mixed, ImitKD, DistiLLM and SKD."),
    "datasets": dict(tags=["layer:component"], deps={"@skd/core": "*", "zod": "^4.1.12"},
                     desc="Pull-based datasets: JSONL loading, bundled tasks, batching."),
    "evaluators": dict(tags=["layer:component"], deps={"@skd/core": "*", "zod": "^4.1.12"},
                       desc="Evaluation metrics for distilled students."),
    "testing": dict(tags=["layer:testing"], deps={"@skd/core": "*", "@skd/backend": "*", "@tensorflow/tfjs-core": TF},
                    desc="Shared fakes and assertions for skd tests: leak checks, toy models with known distributions."),
    "config": dict(tags=["layer:root"], deps={"@skd/core": "*", "@skd/backend": "*", "@skd/divergences": "*", "@skd/models": "*",
                                              "@skd/samplers": "*", "@skd/datasets": "*", "@skd/evaluators": "*",
                                              "tsyringe": "^4.10.0", "reflect-metadata": "^0.2.2", "zod": "^4.1.12"},
                   desc="The composition root: strict config schemas, component registries and buildRun()."),
    "trainer": dict(tags=["layer:root"], deps={"@skd/core": "*", "@tensorflow/tfjs-core": TF, "rxjs": "^7.8.2"},
                    desc="The distillation loop; emits run events as an RxJS stream of plain numbers."),
    "cli": dict(tags=["layer:root"], deps={"@skd/core": "*", "@skd/config": "*", "@skd/trainer": "*", "commander": "^14.0.0"},
                desc="The `skd` command line."),
}

def write(path, content):
    if os.path.exists(path):
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(content)

def dump(obj):
    return json.dumps(obj, indent=2) + "\n"

def scaffold(name, spec):
    d = os.path.join(ROOT, "packages", name)
    pkg = {
        "name": f"@skd/{name}",
        "version": "0.1.0",
        "description": spec["desc"],
        "license": "Apache-2.0",
        "main": "./dist/index.js",
        "types": "./dist/index.d.ts",
        "exports": {".": {"types": "./dist/index.d.ts", "default": "./dist/index.js"}, "./package.json": "./package.json"},
        "files": ["dist", "!dist/**/*.spec.*", "README.md"],
        "dependencies": spec["deps"],
    }
    write(os.path.join(d, "package.json"), dump(pkg))
    write(os.path.join(d, "project.json"), dump({
        "$schema": "../../node_modules/nx/schemas/project-schema.json",
        "name": name, "projectType": "library", "sourceRoot": f"packages/{name}/src", "tags": spec["tags"],
        "targets": {"build": {}, "typecheck": {}, "lint": {}, "test": {}},
    }))
    write(os.path.join(d, "tsconfig.lib.json"), dump({
        "extends": "../../tsconfig.base.json",
        "compilerOptions": {"rootDir": "src", "outDir": "dist", "tsBuildInfoFile": "dist/.tsbuildinfo"},
        "include": ["src/**/*.ts"], "exclude": ["src/**/*.spec.ts"],
    }))
    write(os.path.join(d, "tsconfig.json"), dump({
        "extends": "../../tsconfig.base.json",
        "compilerOptions": {"noEmit": True, "types": ["node", "jest"]},
        "include": ["src/**/*.ts"],
    }))
    write(os.path.join(d, "jest.config.cjs"), "module.exports = require('../../jest.preset.cjs').preset(__dirname);\n")
    write(os.path.join(d, "README.md"), f"# @skd/{name}\n\n{spec['desc']}\n")

if __name__ == "__main__":
    for n in (sys.argv[1:] or PACKAGES):
        scaffold(n, PACKAGES[n])
