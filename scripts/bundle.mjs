#!/usr/bin/env node
// bundle.mjs: the `dist` CLI as one ES module graph in build/bin/ (after tsc).
//
// Why: Node 20's ESM loader costs ~0.5 ms per module file (resolve, package
// scope lookup, read, compile) and has no compile cache; the CLI's ~90 files
// took ~40 ms of every invocation before any work began. Bundling keeps
// startup at one file plus the lazily imported chunks (code splitting keeps
// `await import()` lazy). Packages with native parts or large lazily used
// trees stay external: they are loaded from node_modules as before.
import { build } from 'esbuild';
import { chmodSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${repo}build/bin`, { recursive: true, force: true }); // chunk names change with their content
await build({
  absWorkingDir: repo,
  entryPoints: { dist: 'build/src/cmd/dist/main.js' },
  outdir: 'build/bin',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['better-sqlite3', 'zstd-napi', '@grpc/grpc-js', '@grpc/proto-loader', 'undici'],
  // CommonJS dependencies bundled in (commander, …) call require() for Node built-ins
  banner: { js: "import { createRequire as __distRequire } from 'node:module'; const require = __distRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
chmodSync(`${repo}build/bin/dist.js`, 0o755);
