/**
 * `npm run bench`: runs bench/pull.sh (dist pull / fetch / unpack against
 * containerd 1.6 and the decompress+extract floors on the rig's
 * debian:bookworm). Arguments and env (RUNS, ONLY, SKIP_ANCHORS, PROFILE…)
 * pass through; see the script's header. Needs the rig up.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../bench/pull.sh', import.meta.url)); // build/bench → repo/bench
const r = spawnSync('bash', [script, ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(r.status ?? 1);
