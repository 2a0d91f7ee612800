/**
 * A concurrency limiter: at most n calls of the wrapped functions run at
 * once; the rest wait in FIFO order. A waiting call whose signal aborts is
 * dropped with Canceled. A running call may give its slot up before it ends
 * with the release function it is passed (for a part that only waits).
 */
import { canceled } from '../errdefs/index.js';

export type Limiter = <T>(fn: (release: () => void) => Promise<T>, signal?: AbortSignal) => Promise<T>;

export function createLimiter(n: number): Limiter {
  if (!(n >= 1)) throw new RangeError('limiter size must be at least 1');
  let active = 0;
  const queue: Array<{ start: () => void; cancel: (err: Error) => void }> = [];
  const next = () => {
    while (active < n && queue.length) {
      active++;
      queue.shift()!.start();
    }
  };
  return <T>(fn: (release: () => void) => Promise<T>, signal?: AbortSignal): Promise<T> => {
    if (signal?.aborted) return Promise.reject(canceled('waiting for a slot: canceled', signal.reason));
    return new Promise<T>((resolve, reject) => {
      const entry = {
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          let held = true;
          const release = () => {
            if (!held) return;
            held = false;
            active--;
            next();
          };
          fn(release).then(resolve, reject).finally(release);
        },
        cancel: reject,
      };
      const onAbort = () => {
        const i = queue.indexOf(entry);
        if (i >= 0) {
          queue.splice(i, 1);
          reject(canceled('waiting for a slot: canceled', signal!.reason));
        }
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      queue.push(entry);
      next();
    });
  };
}
