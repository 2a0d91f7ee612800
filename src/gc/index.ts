/**
 * gc: containerd's mark-and-sweep garbage collection (metadata/gc.go) over
 * the metadata database, the shared blob store and the snapshotters.
 *
 * Roots, per namespace: image targets (and their gc.ref labels); leases that
 * have not expired (their content, ingests and snapshots; with
 * containerd.io/gc.flat the resources are kept without following their
 * references); content and snapshots labelled containerd.io/gc.root;
 * containers (their snapshot and gc.ref labels); ingests whose expiry (24 h
 * for ingests not under a lease) lies in the future.
 * Edges: labels containerd.io/gc.ref.content[.|/<name>] → content in the same
 * namespace; containerd.io/gc.ref.snapshot.<snapshotter>[/<name>] → snapshot;
 * a snapshot → its parent (also for flat-leased snapshots); an ingest → the
 * content it expects (whose blob file is kept even when no namespace records
 * it yet: a writer sharing another namespace's blob commits without bytes).
 *
 * Everything unmarked is swept: content records (the blob file goes when no
 * namespace has a record left), ingests, snapshots (children first) and
 * expired leases. Namespaces are separate graphs. Mark and the metadata sweep
 * run in one write transaction: SQLite's write lock is the lock writers
 * (commits) share with the collector, so a collection never races a commit,
 * and anything a pull writes under its lease is a root.
 */
import type { Statement } from 'better-sqlite3';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LocalStore } from '../content/local/store.js';
import type { Ctx } from '../internal/context.js';
import { now, parseRFC3339 } from '../internal/time.js';
import { LABEL_EXPIRE, LABEL_FLAT } from '../leases/types.js';
import { parseLabels, type MetadataDB } from '../metadata/db.js';
import type { Snapshotter } from '../snapshots/types.js';

export const LABEL_ROOT = 'containerd.io/gc.root';
export const LABEL_REF_CONTENT = 'containerd.io/gc.ref.content';
export const LABEL_REF_SNAPSHOT = 'containerd.io/gc.ref.snapshot.';

export interface Removed {
  /** What was (or, in a dry run, would be) removed: "ns/digest", "ns/snapshotter/key", "ns/ref", "ns/lease". */
  items: string[];
  count: number;
  bytes: number;
}

export interface GCResult {
  dryRun: boolean;
  content: Removed;
  /** Blob files deleted from disk (no namespace references them any more). */
  blobs: Removed;
  snapshots: Removed;
  ingests: Removed;
  leases: Removed;
  durationMs: number;
}

export interface GCOptions {
  dryRun?: boolean;
}

/** Opens the backend (namespace-agnostic) snapshotter of a name, or undefined when it cannot be loaded. */
export type BackendOpener = (name: string) => Promise<Snapshotter | undefined>;

interface SnapRow { ns: string; snapshotter: string; key: string; bkey: string; parent: string; labels: string; kind: string }

export class GarbageCollector {
  private running: Promise<GCResult> | undefined;
  /** Backend ingests no namespace records are removed once untouched this long. */
  orphanIngestAgeMs = 10 * 60 * 1000;
  private readonly rawStmts = new Map<string, Statement>();
  private queued: Promise<GCResult> | undefined;

  constructor(private readonly m: MetadataDB, private readonly blobs: LocalStore, private readonly backends: BackendOpener) {}

  /**
   * Runs one collection that marks after this call, so whatever the caller
   * released before calling is collected when it resolves. Collections never
   * overlap: a call during one waits for it and runs the next, which all
   * calls arriving meanwhile share.
   */
  collect(ctx: Ctx = {}, opts: GCOptions = {}): Promise<GCResult> {
    if (opts.dryRun) return this.run(ctx, true);
    if (!this.running) return this.start(ctx);
    this.queued ??= this.running.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.queued = undefined;
      return this.start(ctx);
    });
    return this.queued;
  }

  private start(ctx: Ctx): Promise<GCResult> {
    const p: Promise<GCResult> = this.run(ctx, false).finally(() => {
      if (this.running === p) this.running = undefined;
    });
    this.running = p;
    return p;
  }

  private async run(_ctx: Ctx, dryRun: boolean): Promise<GCResult> {
    const start = performance.now();
    const res: GCResult = { dryRun, content: empty(), blobs: empty(), snapshots: empty(), ingests: empty(), leases: empty(), durationMs: 0 };
    const snapRemovals: { snapshotter: string; bkey: string; depth: number }[] = [];
    const ingestAborts: string[] = [];

    const sweep = () => {
      const marked = this.mark();
      const { isLive } = marked;
      // Leases: expired ones are not roots and go.
      for (const l of marked.expiredLeases) {
        add(res.leases, `${l.ns}/${l.id}`, 0);
        if (!dryRun) {
          this.m.stmt('DELETE FROM leases WHERE ns = ? AND id = ?').run(l.ns, l.id);
          this.m.stmt('DELETE FROM lease_resources WHERE ns = ? AND lease = ?').run(l.ns, l.id);
        }
      }
      // Content records (the digest index covers ns and digest); kept digests keep their blob files.
      const keptDigests = new Set<string>();
      const garbage: [string, string][] = [];
      for (const [ns, dgst] of this.raw('SELECT ns, digest FROM content').all() as [string, string][]) {
        if (isLive(C, ns, dgst)) keptDigests.add(dgst);
        else garbage.push([ns, dgst]);
      }
      // No live lease lists garbage (its resources are all marked): lease rows need no per-item delete.
      const take = this.raw(dryRun ? 'SELECT size FROM content WHERE ns = ? AND digest = ?' : 'DELETE FROM content WHERE ns = ? AND digest = ? RETURNING size').pluck(true);
      const garbageSize = new Map<string, number>();
      for (const [ns, dgst] of garbage) {
        const size = Number(take.get(ns, dgst));
        garbageSize.set(dgst, size);
        add(res.content, `${ns}/${dgst}`, size);
      }
      // Ingests.
      for (const [ns, ref, bref] of this.raw('SELECT ns, ref, bref FROM ingests').all() as [string, string, string][]) {
        if (isLive(I, ns, ref)) continue;
        let size = 0;
        try {
          size = statSync(join(this.blobs.ingestDir(bref), 'data')).size;
        } catch {
          /* no data */
        }
        add(res.ingests, `${ns}/${ref}`, size);
        ingestAborts.push(bref);
        if (!dryRun) {
          this.m.stmt('DELETE FROM ingests WHERE ns = ? AND ref = ?').run(ns, ref);
          this.m.stmt("DELETE FROM lease_resources WHERE ns = ? AND type = 'ingests' AND id = ?").run(ns, ref);
        }
      }
      // Snapshots: deepest first so children go before parents.
      const depthOf = marked.snapDepth;
      for (const s of marked.snapshots) {
        if (s.kind === 'committing') continue; // a commit in flight owns it
        if (isLive(S, s.ns, `${s.snapshotter}/${s.key}`)) continue;
        add(res.snapshots, `${s.ns}/${s.snapshotter}/${s.key}`, 0);
        snapRemovals.push({ snapshotter: s.snapshotter, bkey: s.bkey, depth: depthOf(s) });
        if (!dryRun) {
          this.m.stmt('DELETE FROM snapshots WHERE ns = ? AND snapshotter = ? AND key = ?').run(s.ns, s.snapshotter, s.key);
          this.m.stmt('DELETE FROM lease_resources WHERE ns = ? AND type = ? AND id = ?').run(s.ns, `snapshots/${s.snapshotter}`, s.key);
        }
      }
      // Blob files no namespace keeps (also orphans from failed commits).
      for (const dgst of this.blobFiles()) {
        if (keptDigests.has(dgst) || marked.expectedBlobs.has(dgst)) continue;
        let size = garbageSize.get(dgst);
        if (size === undefined) {
          try {
            size = statSync(this.blobs.blobPath(dgst)).size;
          } catch {
            continue;
          }
        }
        if (!dryRun && !this.blobs.removeBlob(dgst)) continue;
        add(res.blobs, dgst, size);
      }
      // Lease rows whose lease is gone (none are expected; cheap to be sure).
      if (!dryRun) this.m.stmt('DELETE FROM lease_resources WHERE NOT EXISTS (SELECT 1 FROM leases l WHERE l.ns = lease_resources.ns AND l.id = lease_resources.lease)').run();
    };
    if (dryRun) this.m.read(sweep);
    else this.m.tx(sweep);

    if (!dryRun) {
      // Backend work after the metadata commit (containerd does the same).
      snapRemovals.sort((a, b) => b.depth - a.depth);
      for (const s of snapRemovals) {
        const b = await this.backends(s.snapshotter);
        if (!b) continue;
        try {
          const u = await b.usage({}, s.bkey).catch(() => ({ size: 0 }));
          await b.remove({}, s.bkey);
          res.snapshots.bytes += u.size;
        } catch {
          /* gone already, or still has a backend child: cleanup takes it later */
        }
      }
      for (const bref of ingestAborts) await this.blobs.abort({}, bref).catch(() => undefined);
      await this.sweepBackendIngests(res);
      await this.sweepBackendSnapshots(res);
    }
    res.durationMs = performance.now() - start;
    return res;
  }

  /** A statement in raw mode (rows as arrays), prepared once. */
  private raw(sql: string): Statement {
    let st = this.rawStmts.get(sql);
    if (!st) {
      st = this.m.db.prepare(sql).raw(true);
      this.rawStmts.set(sql, st);
    }
    return st;
  }

  /**
   * Marks everything reachable from the roots. A node reached through a
   * flat lease is kept without following its references (a flat snapshot
   * still keeps its parents, flat); reached normally as well, it is
   * followed in full. Nodes are (kind, namespace, id) with snapshot ids
   * "<snapshotter>/<key>", kept in per-namespace sets (no composite keys:
   * this runs over every record of the database).
   */
  private mark() {
    const t = now();
    const followed = [new NodeSet(), new NodeSet(), new NodeSet()];
    const flat = [new NodeSet(), new NodeSet(), new NodeSet()];
    const stackKind: Kind[] = [];
    const stackNs: string[] = [];
    const stackId: string[] = [];
    const flatNs: string[] = [];
    const flatId: string[] = [];
    const visit: Visit = (kind, ns, id) => {
      if (!followed[kind].add(ns, id)) return;
      stackKind.push(kind);
      stackNs.push(ns);
      stackId.push(id);
    };
    const visitFlat: Visit = (kind, ns, id) => {
      if (!flat[kind].add(ns, id) || kind !== S || followed[S].has(ns, id)) return;
      flatNs.push(ns);
      flatId.push(id);
    };
    const isLive = (kind: Kind, ns: string, id: string) => followed[kind].has(ns, id) || flat[kind].has(ns, id);

    // Labels of content that may name roots or references (parsed when followed).
    const contentLabels = new Map<string, Map<string, string>>();
    for (const [ns, dgst, labels] of this.raw("SELECT ns, digest, labels FROM content WHERE labels LIKE '%containerd.io/gc.%'").iterate() as IterableIterator<[string, string, string]>) {
      let m = contentLabels.get(ns);
      if (!m) contentLabels.set(ns, (m = new Map()));
      m.set(dgst, labels);
      if (labels.includes(`"${LABEL_ROOT}"`) && LABEL_ROOT in parseLabels(labels)) visit(C, ns, dgst);
    }
    const snapshots = this.m.stmt('SELECT ns, snapshotter, key, bkey, parent, labels, kind FROM snapshots').all() as SnapRow[];
    const snapByKey = new Map<string, SnapRow>();
    for (const s of snapshots) {
      snapByKey.set(`${s.ns}\0${s.snapshotter}/${s.key}`, s);
      if (s.kind === 'committing') visit(S, s.ns, `${s.snapshotter}/${s.key}`);
      if (s.labels !== '{}' && LABEL_ROOT in parseLabels(s.labels)) visit(S, s.ns, `${s.snapshotter}/${s.key}`);
    }
    // Leases.
    const expiredLeases: { ns: string; id: string }[] = [];
    const leaseFlat = new Map<string, boolean>();
    for (const l of this.m.stmt('SELECT ns, id, labels FROM leases').all() as { ns: string; id: string; labels: string }[]) {
      const labels = parseLabels(l.labels);
      const exp = labels[LABEL_EXPIRE] !== undefined ? parseRFC3339(labels[LABEL_EXPIRE]) : undefined;
      if (exp !== undefined && exp < t) {
        expiredLeases.push(l);
        continue;
      }
      leaseFlat.set(`${l.ns}\0${l.id}`, LABEL_FLAT in labels);
    }
    for (const [ns, lease, type, id] of this.raw('SELECT ns, lease, type, id FROM lease_resources').iterate() as IterableIterator<[string, string, string, string]>) {
      const isFlat = leaseFlat.get(`${ns}\0${lease}`);
      if (isFlat === undefined) continue; // expired or gone
      if (type === 'content') (isFlat ? visitFlat : visit)(C, ns, id);
      else if (type === 'ingests') visit(I, ns, id); // ingests are never flat (containerd)
      else if (type.startsWith('snapshots/')) (isFlat ? visitFlat : visit)(S, ns, `${type.slice('snapshots/'.length)}/${id}`);
    }
    // Images.
    for (const [ns, target, labels] of this.raw("SELECT ns, json_extract(target, '$.digest'), labels FROM images").iterate() as IterableIterator<[string, string, string]>) {
      visit(C, ns, target);
      if (labels.includes('containerd.io/gc.')) labelRefs(ns, parseLabels(labels), visit);
    }
    // Containers.
    for (const [ns, record, labels] of this.raw('SELECT ns, record, labels FROM containers').iterate() as IterableIterator<[string, string, string]>) {
      const c = JSON.parse(record) as { snapshotter?: string; snapshotKey?: string };
      if (c.snapshotter && c.snapshotKey) visit(S, ns, `${c.snapshotter}/${c.snapshotKey}`);
      labelRefs(ns, parseLabels(labels), visit);
    }
    // Ingests: those that have not expired are roots; a live ingest references its expected digest.
    const ingestExpected: [string, string, string][] = [];
    for (const [ns, ref, expected, expiresAt] of this.raw('SELECT ns, ref, expected, expires_at FROM ingests').iterate() as IterableIterator<[string, string, string, string | null]>) {
      if (expected) ingestExpected.push([ns, ref, expected]);
      if (expiresAt !== null && BigInt(expiresAt) > t) visit(I, ns, ref);
    }
    const expectedOf = new Map(ingestExpected.map(([ns, ref, dgst]) => [`${ns}\0${ref}`, dgst]));
    // Follow references.
    for (;;) {
      if (stackKind.length) {
        const kind = stackKind.pop()!;
        const ns = stackNs.pop()!;
        const id = stackId.pop()!;
        if (kind === C) {
          const labels = contentLabels.get(ns)?.get(id);
          if (labels) labelRefs(ns, parseLabels(labels), visit);
        } else if (kind === S) {
          const s = snapByKey.get(`${ns}\0${id}`);
          if (!s) continue;
          if (s.parent) visit(S, ns, `${s.snapshotter}/${s.parent}`);
          if (s.labels !== '{}') labelRefs(ns, parseLabels(s.labels), visit);
        } else {
          const expected = expectedOf.get(`${ns}\0${id}`);
          if (expected) visit(C, ns, expected);
        }
      } else if (flatNs.length) {
        const ns = flatNs.pop()!;
        const s = snapByKey.get(`${ns}\0${flatId.pop()!}`);
        if (s?.parent) visitFlat(S, ns, `${s.snapshotter}/${s.parent}`);
      } else break;
    }
    // Blob files live ingests expect stay even where no namespace records them
    // yet: a writer sharing a blob of another namespace commits without bytes.
    const expectedBlobs = new Set<string>();
    for (const [ns, ref, dgst] of ingestExpected) if (isLive(I, ns, ref)) expectedBlobs.add(dgst);
    const snapDepth = (s: SnapRow) => {
      let d = 0;
      for (let p = s.parent; p && d < 10_000; d++) p = snapByKey.get(`${s.ns}\0${s.snapshotter}/${p}`)?.parent ?? '';
      return d;
    };
    return { isLive, expiredLeases, snapshots, snapDepth, expectedBlobs };
  }

  private *blobFiles(): Generator<string> {
    const base = join(this.blobs.root, 'blobs');
    let algs: string[] = [];
    try {
      algs = readdirSync(base);
    } catch {
      return;
    }
    for (const alg of algs) {
      let names: string[] = [];
      try {
        names = readdirSync(join(base, alg));
      } catch {
        continue;
      }
      for (const hex of names) yield `${alg}:${hex}`;
    }
  }

  /**
   * Removes backend ingests no namespace records (left by a deleted namespace
   * or a crash between a commit's publish and its cleanup), unless a live
   * writer holds them. A metadata writer records its ingest before opening
   * the backend one, so an unrecorded, unlocked ingest has no owner.
   */
  private async sweepBackendIngests(res: GCResult): Promise<void> {
    const recorded = new Set((this.m.stmt('SELECT bref FROM ingests').all() as { bref: string }[]).map((r) => r.bref));
    const cutoff = now() - BigInt(this.orphanIngestAgeMs) * 1_000_000n;
    for (const st of await this.blobs.listStatuses({})) {
      // Recent ones may be a commit finishing its cleanup: leave them to a later collection.
      if (recorded.has(st.ref) || st.updatedAt > cutoff || this.blobs.isLocked(st.ref)) continue;
      await this.blobs.abort({}, st.ref).then(() => add(res.ingests, `(orphan)/${st.ref}`, st.offset)).catch(() => undefined);
    }
  }

  /** Removes backend snapshots that no metadata record names (crash leftovers). */
  private async sweepBackendSnapshots(res: GCResult): Promise<void> {
    const names = (this.m.stmt('SELECT DISTINCT snapshotter FROM snapshots').all() as { snapshotter: string }[]).map((r) => r.snapshotter);
    for (const name of names) {
      const b = await this.backends(name);
      if (!b) continue;
      const known = new Set((this.m.stmt('SELECT bkey FROM snapshots WHERE snapshotter = ?').all(name) as { bkey: string }[]).map((r) => r.bkey));
      const orphans: { key: string; parent?: string }[] = [];
      await b.walk({}, (info) => {
        if (!known.has(info.name)) orphans.push({ key: info.name, parent: info.parent });
      });
      // Children first: remove those no other orphan names as parent, repeatedly.
      let left = orphans;
      for (let round = 0; left.length && round < 1000; round++) {
        const parents = new Set(left.map((o) => o.parent).filter(Boolean));
        const leaves = left.filter((o) => !parents.has(o.key));
        if (!leaves.length) break;
        for (const o of leaves) {
          // Re-check: a create may have inserted its record meanwhile.
          if (this.m.stmt('SELECT 1 FROM snapshots WHERE snapshotter = ? AND bkey = ?').get(name, o.key)) continue;
          await b.remove({}, o.key).then(() => add(res.snapshots, `(orphan)/${name}/${o.key}`, 0)).catch(() => undefined);
        }
        const gone = new Set(leaves.map((o) => o.key));
        left = left.filter((o) => !gone.has(o.key));
      }
      await b.cleanup?.({}).catch(() => undefined);
    }
  }
}

function labelRefs(ns: string, labels: Record<string, string>, visit: Visit): void {
  for (const k in labels) {
    if (k.startsWith(LABEL_REF_CONTENT)) {
      const c = k.charAt(LABEL_REF_CONTENT.length);
      if (c === '' || c === '.' || c === '/') visit(C, ns, labels[k]);
    } else if (k.startsWith(LABEL_REF_SNAPSHOT)) {
      let sn = k.slice(LABEL_REF_SNAPSHOT.length);
      const i = sn.indexOf('/');
      if (i >= 0) sn = sn.slice(0, i);
      visit(S, ns, `${sn}/${labels[k]}`);
    }
  }
}

/** Node kinds. */
const C = 0;
const S = 1;
const I = 2;
type Kind = typeof C | typeof S | typeof I;
type Visit = (kind: Kind, ns: string, id: string) => void;

/** Ids per namespace. */
class NodeSet {
  private readonly byNs = new Map<string, Set<string>>();

  /** Adds (ns, id); false when it was there already. */
  add(ns: string, id: string): boolean {
    let s = this.byNs.get(ns);
    if (!s) this.byNs.set(ns, (s = new Set()));
    if (s.has(id)) return false;
    s.add(id);
    return true;
  }

  has(ns: string, id: string): boolean {
    return this.byNs.get(ns)?.has(id) ?? false;
  }
}

function empty(): Removed {
  return { items: [], count: 0, bytes: 0 };
}

function add(r: Removed, item: string, bytes: number): void {
  r.items.push(item);
  r.count++;
  r.bytes += bytes;
}
