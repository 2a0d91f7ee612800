#!/usr/bin/env node
// Runs every compiled test file (build/test/**/*.test.js) with node's test
// runner and the spec reporter, so the run ends with node's summary lines.
// Usage: node scripts/run-tests.mjs [substring filter…]
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('../build/test', import.meta.url).pathname;
// The CLI tests run the bundle: remake it when tsc has written newer output.
const bundle = new URL('../build/bin/dist.js', import.meta.url).pathname;
const entry = new URL('../build/src/cmd/dist/main.js', import.meta.url).pathname;
if (!existsSync(bundle) || statSync(entry).mtimeMs > statSync(bundle).mtimeMs) {
  const b = spawnSync(process.execPath, [new URL('./bundle.mjs', import.meta.url).pathname], { stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}
const files = [];
(function walk(dir) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
})(root);
const filters = process.argv.slice(2);
const selected = filters.length ? files.filter((f) => filters.some((s) => f.includes(s))) : files;
if (!selected.length) { console.error('no test files matched'); process.exit(1); }
// Each test gets at most 5 minutes: a hung test fails instead of stalling CI.
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, `--test-timeout=${process.env.TEST_TIMEOUT_MS ?? 300000}`, ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
