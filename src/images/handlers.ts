/**
 * Handlers: containerd's model for walking image content.
 *
 * A Handler is called with one descriptor and returns its children (the
 * descriptors to visit next). Small handlers are composed (`handlers(...)`)
 * and wrapped (`filterPlatforms`, `limitManifests`, `setChildrenLabels`), then
 * driven over a tree by `walk` (sequential, depth-first) or `dispatch`
 * (siblings concurrently, with an optional concurrency limit). Fetch, push,
 * unpack and GC-label walks are all built this way.
 *
 * Control flow through sentinel errors:
 * - ErrSkipDesc: the descriptor is done and its children are not visited.
 * - ErrStopHandler: stop calling later handlers of a `handlers(...)` chain
 *   for this descriptor; the children gathered so far are still returned.
 */
import { canceled, notFound, throwIfAborted } from '../errdefs/index.js';
import type { Ctx } from '../internal/context.js';
import type { Descriptor, Manager, Provider } from '../content/types.js';
import { sortByPreference, type Matcher, type MatchComparer } from '../platforms/index.js';
import { isIndex, isKnownConfig, isLayer, isManifest } from './mediatypes.js';
import { readIndex, readManifest } from './manifest.js';

export type Handler = (ctx: Ctx, desc: Descriptor) => Promise<Descriptor[]>;

/** Skip the descriptor's children (walk and dispatch treat it as success). */
export class SkipDescError extends Error {
  constructor(message = 'skip descriptor') {
    super(message);
    this.name = 'SkipDescError';
  }
}

/** Stop the rest of a handlers(...) chain for this descriptor. */
export class StopHandlerError extends Error {
  constructor(message = 'stop handler') {
    super(message);
    this.name = 'StopHandlerError';
  }
}

/** walkNotEmpty found no children at all (e.g. every manifest was filtered out). */
export class EmptyWalkError extends Error {
  constructor(message = 'image might be filtered out') {
    super(message);
    this.name = 'EmptyWalkError';
  }
}

export const ErrSkipDesc = new SkipDescError();
export const ErrStopHandler = new StopHandlerError();
export const ErrEmptyWalk = new EmptyWalkError();

function isClass(err: unknown, cls: new (...a: any[]) => Error): boolean {
  for (let e: any = err, depth = 0; e != null && depth < 16; e = e.cause, depth++) {
    if (e instanceof cls) return true;
  }
  return false;
}

/** True for ErrSkipDesc (or an error whose cause chain holds one). */
export const isSkipDesc = (err: unknown) => isClass(err, SkipDescError);
export const isStopHandler = (err: unknown) => isClass(err, StopHandlerError);
export const isEmptyWalk = (err: unknown) => isClass(err, EmptyWalkError);

/**
 * Runs hs in order on each descriptor and concatenates their children. A
 * handler throwing ErrStopHandler ends the chain (children so far returned);
 * any other error fails the descriptor.
 */
export function handlers(...hs: Handler[]): Handler {
  return async (ctx, desc) => {
    const children: Descriptor[] = [];
    for (const h of hs) {
      try {
        children.push(...(await h(ctx, desc)));
      } catch (err) {
        if (isStopHandler(err)) break;
        throw err;
      }
    }
    return children;
  };
}

/** Depth-first, one descriptor at a time: each child tree is finished before its next sibling. */
export async function walk(ctx: Ctx, handler: Handler, ...descs: Descriptor[]): Promise<void> {
  for (const desc of descs) {
    throwIfAborted(ctx.signal);
    let children: Descriptor[];
    try {
      children = await handler(ctx, desc);
    } catch (err) {
      if (isSkipDesc(err)) continue;
      throw err;
    }
    if (children.length > 0) await walk(ctx, handler, ...children);
  }
}

/** walk, but throws ErrEmptyWalk when no handler call returned any child. */
export async function walkNotEmpty(ctx: Ctx, handler: Handler, ...descs: Descriptor[]): Promise<void> {
  let empty = true;
  await walk(ctx, async (c, d) => {
    const children = await handler(c, d);
    if (children.length > 0) empty = false;
    return children;
  }, ...descs);
  if (empty) throw new EmptyWalkError();
}

/**
 * A counting semaphore. Share one between dispatches to bound their total
 * concurrency; acquire is abortable.
 */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<{ resolve: () => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }> = [];
  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('semaphore limit must be at least 1');
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(canceled('operation canceled', signal.reason));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const w: (typeof this.waiters)[number] = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(canceled('operation canceled', signal.reason));
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  release(): void {
    const w = this.waiters.shift();
    if (w) {
      if (w.onAbort) w.signal!.removeEventListener('abort', w.onAbort);
      w.resolve(); // the permit passes straight to the waiter
    } else {
      this.active--;
    }
  }
}

/**
 * Runs handler over descs and, recursively, the children it returns;
 * siblings run concurrently. `limit` bounds how many handler calls run at
 * once across the whole tree (a number, 0/undefined for no limit, or a shared
 * Semaphore); a permit is held only while the handler runs, not while its
 * children are dispatched.
 *
 * The first error aborts the signal handed to every other handler call (the
 * abort reason is that error), waits for them to settle, and is rethrown.
 * ErrSkipDesc skips a descriptor's children. Aborting ctx.signal stops
 * launching new work and ends with Canceled.
 */
export async function dispatch(ctx: Ctx, handler: Handler, limit: number | Semaphore | undefined, ...descs: Descriptor[]): Promise<void> {
  const sem = limit instanceof Semaphore ? limit : limit && limit > 0 ? new Semaphore(limit) : undefined;
  await dispatchGroup(ctx, handler, sem, descs);
  throwIfAborted(ctx.signal);
}

async function dispatchGroup(ctx: Ctx, handler: Handler, sem: Semaphore | undefined, descs: Descriptor[]): Promise<void> {
  throwIfAborted(ctx.signal);
  const ac = new AbortController();
  const parent = ctx.signal;
  const onParentAbort = () => ac.abort(parent!.reason);
  parent?.addEventListener('abort', onParentAbort, { once: true });
  const gctx: Ctx = { ...ctx, signal: ac.signal };
  let failed = false;
  let firstErr: unknown;
  const fail = (err: unknown) => {
    if (failed) return;
    failed = true;
    firstErr = err;
    ac.abort(err);
  };
  const tasks: Promise<void>[] = [];
  try {
    for (const desc of descs) {
      if (ac.signal.aborted) break;
      if (sem) {
        try {
          await sem.acquire(ac.signal);
        } catch (err) {
          if (!parent?.aborted) fail(err);
          break;
        }
      }
      tasks.push((async () => {
        let children: Descriptor[];
        try {
          children = await handler(gctx, desc);
        } catch (err) {
          if (isSkipDesc(err)) return;
          throw err;
        } finally {
          sem?.release();
        }
        if (children.length > 0) await dispatchGroup(gctx, handler, sem, children);
      })().catch(fail));
    }
    await Promise.all(tasks);
  } finally {
    parent?.removeEventListener('abort', onParentAbort);
  }
  if (failed) throw firstErr;
}

/**
 * Immediate children of a descriptor: a manifest's config then its layers;
 * an index's manifests. Layers, configs and unknown types have none.
 */
export async function children(ctx: Ctx, provider: Provider, desc: Descriptor): Promise<Descriptor[]> {
  if (isManifest(desc.mediaType)) {
    const m = await readManifest(ctx, provider, desc);
    return [m.config, ...m.layers];
  }
  if (isIndex(desc.mediaType)) {
    return [...(await readIndex(ctx, provider, desc)).manifests];
  }
  // Layers and configs are childless; unknown types are not descended into.
  return [];
}

/** Handler returning children(ctx, provider, desc). */
export function childrenHandler(provider: Provider): Handler {
  return (ctx, desc) => children(ctx, provider, desc);
}

export const LabelGCRefContent = 'containerd.io/gc.ref.content';

/**
 * The GC reference label key(s) a parent uses for a child: configs
 * ".config", manifests ".m." (indexed), layers ".l." (indexed), anything
 * else "containerd.io/gc.ref.content." (indexed).
 */
export function childGCLabels(desc: Descriptor): string[] {
  const mt = desc.mediaType;
  if (isKnownConfig(mt)) return [`${LabelGCRefContent}.config`];
  if (isManifest(mt)) return [`${LabelGCRefContent}.m.`];
  if (isLayer(mt)) return [`${LabelGCRefContent}.l.`];
  return [`${LabelGCRefContent}.`];
}

/** childGCLabels, without labels for layers. */
export function childGCLabelsFilterLayers(desc: Descriptor): string[] {
  return isLayer(desc.mediaType) ? [] : childGCLabels(desc);
}

/**
 * Wraps f: after f returns children, labels the parent blob with one GC
 * reference per child (`<key><n>` when the key ends in "." or repeats; the
 * first use of a key not ending in "." stays bare, e.g. ".config") and
 * passes the children through. One manager.update per parent, with
 * fieldpaths `labels.<key>`.
 */
export function setChildrenMappedLabels(manager: Pick<Manager, 'update'>, f: Handler, labelMap: (d: Descriptor) => string[] = childGCLabels): Handler {
  return async (ctx, desc) => {
    const kids = await f(ctx, desc);
    if (kids.length === 0) return kids;
    const labels: Record<string, string> = {};
    const fields: string[] = [];
    const counts = new Map<string, number>();
    for (const ch of kids) {
      for (let key of labelMap(ch)) {
        const idx = counts.get(key) ?? 0;
        counts.set(key, idx + 1);
        if (idx > 0 || key.endsWith('.')) key = `${key}${idx}`;
        labels[key] = ch.digest;
        fields.push(`labels.${key}`);
      }
    }
    if (fields.length > 0) await manager.update(ctx, { digest: desc.digest, labels }, fields);
    return kids;
  };
}

/** setChildrenMappedLabels with containerd's default key mapping. */
export function setChildrenLabels(manager: Pick<Manager, 'update'>, f: Handler): Handler {
  return setChildrenMappedLabels(manager, f);
}

/** Wraps f: drops children whose platform doesn't match (children without a platform are kept). */
export function filterPlatforms(f: Handler, m: Matcher | undefined): Handler {
  return async (ctx, desc) => {
    const kids = await f(ctx, desc);
    if (!m) return kids;
    return kids.filter((d) => !d.platform || m.match(d.platform));
  };
}

/**
 * Wraps f: for an index, orders its manifests by m's preference (stable;
 * no platform last) and keeps the best n (n <= 0: all). NotFound when n > 0
 * and nothing is left. Other descriptors pass through.
 */
export function limitManifests(f: Handler, m: MatchComparer, n: number): Handler {
  return async (ctx, desc) => {
    let kids = await f(ctx, desc);
    if (!isIndex(desc.mediaType)) return kids;
    kids = sortByPreference(kids, m);
    if (n > 0) {
      if (kids.length === 0) throw notFound(`no match for platform in manifest ${desc.digest}`);
      if (kids.length > n) kids = kids.slice(0, n);
    }
    return kids;
  };
}

