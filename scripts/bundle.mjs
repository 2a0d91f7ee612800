#!/usr/bin/env node
// bundle.mjs: the `dist` CLI as one ES module graph in build/bin/ (after tsc).
//
// Why: Node 20's ESM loader costs ~0.5 ms per module file (resolve, package
// scope lookup, read, compile) and has no compile cache; the CLI's ~90 files
// took ~40 ms of every invocation before any work began. Bundling keeps
// startup at one file plus the lazily imported chunks (code splitting keeps
// `await import()` lazy). Packages with native parts or large lazily used
// trees stay external: they are loaded from node_modules as before.
//
// Startup snapshot: the same CLI is also bundled as one CommonJS script
// (build/bin/dist-snapshot.cjs, no code splitting) and run once with
// `node --build-snapshot`, which stores the heap after every module was
// evaluated as build/bin/dist.blob. bin/dist starts Node from that blob: no
// module is read, compiled or evaluated at startup (~30 ms less per command
// here). The blob only fits the Node binary that built it, whose identity
// (inode, size, mtime, ctime: `stat -L -c '%i %s %Y %Z'`) goes to
// build/bin/dist.blob.node for bin/dist to compare with the `node` it would
// run (a stat costs it ~1.5 ms where `node --version` cost ~7), and V8 flags
// equal to the build's (bin/dist does not use it when NODE_OPTIONS is set).
// Inside the snapshot, `require` knows only Node's built-in modules: the
// banner routes other ids (packages kept external) to a require made for the
// bundle's path, at run time.
// src/internal/snapshot.ts has the module-side rules.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const entry = 'build/src/cmd/dist/main.js';
const common = {
  absWorkingDir: repo,
  bundle: true,
  platform: 'node',
  target: 'node20',
  external: ['zstd-napi', '@grpc/grpc-js', '@grpc/proto-loader', 'undici'],
  logLevel: 'warning',
};
rmSync(`${repo}build/bin`, { recursive: true, force: true }); // chunk names change with their content
await build({
  ...common,
  entryPoints: { dist: entry },
  outdir: 'build/bin',
  splitting: true,
  format: 'esm',
  // CommonJS dependencies bundled in (commander, …) call require() for Node built-ins
  banner: { js: "import { createRequire as __distRequire } from 'node:module'; const require = __distRequire(import.meta.url);" },
  sourcemap: 'linked',
});
chmodSync(`${repo}build/bin/dist.js`, 0o755);

await build({
  ...common,
  entryPoints: [entry],
  outfile: 'build/bin/dist-snapshot.cjs',
  format: 'cjs',
  define: { 'import.meta.url': '__distMetaUrl' },
  banner: {
    js: [
      'var __distMetaUrl = require("node:url").pathToFileURL(__filename).href;',
      'var __distBuiltin = require;',
      'var module = typeof module === "undefined" ? { exports: {} } : module;', // the snapshot builder passes none
      'require = (id) => (__distBuiltin("node:module").isBuiltin(id) ? __distBuiltin(id) : __distBuiltin("node:module").createRequire(__filename)(id));',
    ].join('\n'),
  },
});
const blob = `${repo}build/bin/dist.blob`;
try {
  const node = realpathSync(process.execPath);
  execFileSync(node, ['--snapshot-blob', blob, '--build-snapshot', `${repo}build/bin/dist-snapshot.cjs`], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  const st = statSync(node);
  const secs = (ms) => Math.floor(ms / 1000);
  writeFileSync(`${blob}.node`, `${st.ino} ${st.size} ${secs(st.mtimeMs)} ${secs(st.ctimeMs)}\n`);
} catch (err) {
  // bin/dist runs the ES module bundle without a blob: slower to start, same behaviour
  rmSync(blob, { force: true });
  console.warn(`bundle: no startup snapshot (${String(err.stderr ?? err.message).trim().split('\n').pop()})`);
}
