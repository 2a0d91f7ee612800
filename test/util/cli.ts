/** Runs the dist CLI (built) as a child process. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The launcher users run (bin/dist: sh, then Node on build/bin/dist.js). */
export const DIST_BIN = fileURLToPath(new URL('../../../bin/dist', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function dist(args: string[], opts: { root?: string; input?: Buffer | string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  const full = opts.root ? ['--root', opts.root, ...args] : args;
  return new Promise((resolve, reject) => {
    const child = spawn(DIST_BIN, full, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    child.stdin.on('error', () => undefined); // EPIPE: the command exited before reading all its input (a failure the result shows)
    child.stdin.end(opts.input ?? '');
  });
}

/** Like dist(), but throws with stderr when the exit code is not 0. */
export async function distOK(args: string[], opts: Parameters<typeof dist>[1] = {}): Promise<RunResult> {
  const r = await dist(args, opts);
  if (r.code !== 0) throw new Error(`dist ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r;
}
