/**
 * metadata/content: the namespaced, lease-aware content store. Wraps the
 * local (shared, on-disk) store; visibility, labels and timestamps live in
 * the metadata database per namespace.
 *
 * Policy "shared" (containerd's default): a writer in namespace B for a digest
 * already committed in A needs no bytes; its commit just makes it visible in B.
 * Deleting the last namespace's record of a blob removes the blob file in the
 * same write transaction (nothing else can reference it).
 */
import * as digest from '../digest/index.js';
import { alreadyExists, failedPrecondition, invalidArgument, isAlreadyExists, isNotFound, notFound, throwIfAborted } from '../errdefs/index.js';
import * as filters from '../filters/index.js';
import { LocalStore, adaptInfo, adaptStatus, type LocalWriter } from '../content/local/store.js';
import type { CommitOpts, Descriptor, Info, ReaderAt, Status, Store, WalkFn, Writer, WriterOpts } from '../content/types.js';
import { applyLabelPaths, validateLabels } from '../internal/fieldpaths.js';
import type { Ctx } from '../internal/context.js';
import { now, type Timestamp } from '../internal/time.js';
import { parseLabels, type MetadataDB } from './db.js';
import { addToLease, removeFromLeases } from './leases.js';
import { namespaceRequired } from './namespace.js';

/** Ingests not under a lease may be aborted by GC after this long. */
export const INGEST_EXPIRY_NS = 24n * 3600n * 1_000_000_000n;

interface ContentRow { digest: string; size: number; labels: string; created_at: string; updated_at: string }

export class MetaContentStore implements Store {
  constructor(private readonly m: MetadataDB, readonly backend: LocalStore) {}

  async info(ctx: Ctx, dgst: string): Promise<Info> {
    const ns = namespaceRequired(ctx);
    digest.parse(dgst);
    const row = this.m.stmt('SELECT digest, size, labels, created_at, updated_at FROM content WHERE ns = ? AND digest = ?').get(ns, dgst) as ContentRow | undefined;
    if (!row) throw notFound(`content ${dgst}`);
    return rowInfo(row);
  }

  async update(ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths?: string[]): Promise<Info> {
    const ns = namespaceRequired(ctx);
    digest.parse(info.digest);
    return this.m.tx(() => {
      const row = this.m.stmt('SELECT digest, size, labels, created_at, updated_at FROM content WHERE ns = ? AND digest = ?').get(ns, info.digest) as ContentRow | undefined;
      if (!row) throw notFound(`content ${info.digest}`);
      const cur = rowInfo(row);
      const { labels, rest } = applyLabelPaths(cur.labels, info.labels, fieldpaths);
      if (rest.length) throw invalidArgument(`cannot update ${rest.join(', ')} field on content info ${info.digest}`);
      validateLabels(labels);
      const updatedAt = now();
      this.m.stmt('UPDATE content SET labels = ?, updated_at = ? WHERE ns = ? AND digest = ?').run(JSON.stringify(labels), updatedAt.toString(), ns, info.digest);
      addToLease(this.m, ctx, ns, 'content', info.digest);
      return { ...cur, labels, updatedAt };
    });
  }

  async walk(ctx: Ctx, fn: WalkFn, fs: string[] = []): Promise<void> {
    const ns = namespaceRequired(ctx);
    const filter = filters.parseAll(...fs);
    const rows = this.m.stmt('SELECT digest, size, labels, created_at, updated_at FROM content WHERE ns = ? ORDER BY digest').all(ns) as ContentRow[];
    for (const row of rows) {
      throwIfAborted(ctx.signal);
      const info = rowInfo(row);
      if (filter.match(adaptInfo(info))) await fn(info);
    }
  }

  async delete(ctx: Ctx, dgst: string): Promise<void> {
    const ns = namespaceRequired(ctx);
    digest.parse(dgst);
    this.m.tx(() => {
      const res = this.m.stmt('DELETE FROM content WHERE ns = ? AND digest = ?').run(ns, dgst);
      if (res.changes === 0) throw notFound(`content ${dgst}`);
      removeFromLeases(this.m, ns, 'content', dgst);
      // Last reference (no record, and no ingest expecting it: a shared writer
      // in another namespace commits without bytes): remove the blob under the same write lock.
      if (!this.m.stmt('SELECT 1 FROM content WHERE digest = ? LIMIT 1').get(dgst) && !this.m.stmt('SELECT 1 FROM ingests WHERE expected = ? LIMIT 1').get(dgst)) {
        this.backend.removeBlob(dgst);
      }
    });
    this.m.markDirty('content');
  }

  async readerAt(ctx: Ctx, desc: Pick<Descriptor, 'digest'> & Partial<Descriptor>): Promise<ReaderAt> {
    const ns = namespaceRequired(ctx);
    digest.parse(desc.digest);
    if (!this.m.stmt('SELECT 1 FROM content WHERE ns = ? AND digest = ?').get(ns, desc.digest)) throw notFound(`content ${desc.digest}`);
    return this.backend.readerAt(ctx, desc);
  }

  async writer(ctx: Ctx, opts: WriterOpts): Promise<Writer> {
    if (!opts.ref) throw invalidArgument('ref must not be empty');
    const ns = namespaceRequired(ctx);
    throwIfAborted(ctx.signal);
    const desc = { size: opts.desc?.size ?? 0, digest: opts.desc?.digest ?? '' };
    if (desc.digest) digest.parse(desc.digest);
    const started = now();
    let shared = false;
    const bref = backendRef(ns, opts.ref);
    const exists = this.m.tx(() => {
      if (desc.digest && this.m.stmt('SELECT 1 FROM content WHERE ns = ? AND digest = ?').get(ns, desc.digest)) {
        addToLease(this.m, ctx, ns, 'content', desc.digest);
        return true;
      }
      if (desc.digest) {
        const size = this.backend.blobSize(desc.digest);
        if (size !== undefined && (desc.size === 0 || desc.size === size)) {
          shared = true;
          desc.size = size;
        }
      }
      this.m.ensureNamespace(ns, started);
      addToLease(this.m, ctx, ns, 'ingests', opts.ref);
      const expires = ctx.lease ? null : (started + INGEST_EXPIRY_NS).toString();
      this.m.stmt('INSERT INTO ingests(ns, ref, bref, expected, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(ns, ref) DO UPDATE SET expected = CASE excluded.expected WHEN \'\' THEN ingests.expected ELSE excluded.expected END, expires_at = excluded.expires_at')
        .run(ns, opts.ref, bref, desc.digest, expires);
      return false;
    });
    if (exists) throw alreadyExists(`content ${desc.digest}`);
    // A shared blob needs no bytes; otherwise open (or resume) the backend ingest.
    // The expected digest is not passed down: the backend has it already when shared.
    const w = shared ? undefined : await this.backend.writer(ctx, { ref: bref, desc: { size: desc.size } });
    return new MetaWriter(this, this.m, ns, opts.ref, bref, w, desc, started);
  }

  async status(ctx: Ctx, ref: string): Promise<Status> {
    const ns = namespaceRequired(ctx);
    const row = this.m.stmt('SELECT bref, expected FROM ingests WHERE ns = ? AND ref = ?').get(ns, ref) as { bref: string; expected: string } | undefined;
    if (!row) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
    const st = await this.backend.status(ctx, row.bref).catch((err) => {
      if (isNotFound(err)) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
      throw err;
    });
    // The expected digest is kept in the record (the backend ingest does not get it).
    return { ...st, ref, expected: st.expected || row.expected };
  }

  async listStatuses(ctx: Ctx, fs: string[] = []): Promise<Status[]> {
    const ns = namespaceRequired(ctx);
    const filter = filters.parseAll(...fs);
    const rows = this.m.stmt('SELECT ref, bref, expected FROM ingests WHERE ns = ? ORDER BY ref').all(ns) as { ref: string; bref: string; expected: string }[];
    const out: Status[] = [];
    for (const r of rows) {
      let st: Status;
      try {
        const bst = await this.backend.status(ctx, r.bref);
        st = { ...bst, ref: r.ref, expected: bst.expected || r.expected };
      } catch (err) {
        if (isNotFound(err)) continue; // shared writer with no bytes yet, or already committed
        throw err;
      }
      if (filter.match(adaptStatus(st))) out.push(st);
    }
    return out;
  }

  async abort(ctx: Ctx, ref: string): Promise<void> {
    const ns = namespaceRequired(ctx);
    const bref = this.m.tx(() => {
      const row = this.m.stmt('SELECT bref FROM ingests WHERE ns = ? AND ref = ?').get(ns, ref) as { bref: string } | undefined;
      if (!row) throw notFound(`ingest ref ${JSON.stringify(ref)}`);
      this.m.stmt('DELETE FROM ingests WHERE ns = ? AND ref = ?').run(ns, ref);
      removeFromLeases(this.m, ns, 'ingests', ref);
      return row.bref;
    });
    await this.backend.abort(ctx, bref).catch((err) => {
      if (!isNotFound(err)) throw err;
    });
  }

  /**
   * @internal Records a committed blob in ns (inside the caller's transaction)
   * and drops the ingest record. Returns false when ns already had the blob:
   * the caller reports AlreadyExists after the transaction, as containerd does.
   */
  recordCommit(ctx: Ctx, ns: string, ref: string, dgst: string, size: number, labels: Record<string, string>): boolean {
    const t = now().toString();
    this.m.ensureNamespace(ns, BigInt(t));
    const res = this.m.stmt('INSERT OR IGNORE INTO content(ns, digest, size, labels, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)').run(ns, dgst, size, JSON.stringify(labels), t, t);
    this.m.stmt('DELETE FROM ingests WHERE ns = ? AND ref = ?').run(ns, ref);
    removeFromLeases(this.m, ns, 'ingests', ref);
    addToLease(this.m, ctx, ns, 'content', dgst);
    return res.changes > 0;
  }
}

class MetaWriter implements Writer {
  constructor(
    private readonly store: MetaContentStore,
    private readonly m: MetadataDB,
    private readonly ns: string,
    readonly ref: string,
    private readonly bref: string,
    private w: LocalWriter | undefined,
    private readonly desc: { size: number; digest: string },
    private readonly started: Timestamp,
  ) {}

  async write(chunk: Uint8Array, signal?: AbortSignal): Promise<void> {
    if (!this.w) {
      if (chunk.length === 0) return;
      await this.createAndCopy(this.desc.size, signal);
    }
    await this.w!.write(chunk, signal);
  }

  digest(): string {
    return this.w ? this.w.digest() : this.desc.digest;
  }

  async status(): Promise<Status> {
    if (this.w) {
      const st = await this.w.status();
      return { ...st, ref: this.ref, expected: st.expected || this.desc.digest };
    }
    return { ref: this.ref, offset: this.desc.size, total: this.desc.size, expected: this.desc.digest, startedAt: this.started, updatedAt: this.started };
  }

  async truncate(size: number): Promise<void> {
    if (this.w) return this.w.truncate(size);
    await this.createAndCopy(size);
  }

  async commit(ctx: Ctx, size: number, expected: string, opts: CommitOpts = {}): Promise<void> {
    const labels = opts.labels ?? {};
    try {
      validateLabels(labels);
    } catch (err) {
      await this.close();
      throw err;
    }
    if (!this.w) {
      if (size !== 0 && size !== this.desc.size) throw failedPrecondition(`${JSON.stringify(this.ref)} failed size validation: ${this.desc.size} != ${size}`);
      if (expected && expected !== this.desc.digest) throw failedPrecondition(`${JSON.stringify(this.ref)} unexpected digest`);
      const created = this.m.tx(() => {
        // The shared blob may have been removed since writer() (GC): never record a missing file.
        if (this.store.backend.blobSize(this.desc.digest) !== this.desc.size) throw notFound(`content ${this.desc.digest} (shared from another namespace)`);
        return this.store.recordCommit(ctx, this.ns, this.ref, this.desc.digest, this.desc.size, labels);
      });
      if (!created) {
        throw alreadyExists(`content ${this.desc.digest}`);
      }
      return;
    }
    const w = this.w;
    const st = await w.status();
    if (size !== 0 && size !== st.offset) {
      await w.close();
      throw failedPrecondition(`${JSON.stringify(this.ref)} failed size validation: ${st.offset} != ${size}`);
    }
    const actual = expected || w.digest();
    let recorded = false;
    let created = false;
    try {
      await w.commit(ctx, st.offset, expected, {
        withLock: (publish) =>
          this.m.tx(() => {
            const moved = publish();
            created = this.store.recordCommit(ctx, this.ns, this.ref, actual, st.offset, labels);
            recorded = true;
            return moved;
          }),
      });
    } catch (err) {
      // The blob was already in the backend (another namespace or ref): fine once recorded here.
      if (!(recorded && isAlreadyExists(err))) throw err;
    }
    if (!created) throw alreadyExists(`content ${actual}`);
  }

  async close(): Promise<void> {
    await this.w?.close();
  }

  /** Turns a shared (byte-less) writer into a real ingest holding the first `size` bytes of the shared blob. */
  private async createAndCopy(size: number, signal?: AbortSignal): Promise<void> {
    const w = await this.store.backend.writer({ signal }, { ref: this.bref, desc: { size: 0 } });
    try {
      await w.truncate(0);
      if (size > 0) {
        const ra = await this.store.backend.readerAt({ signal }, { digest: this.desc.digest });
        try {
          for await (const chunk of ra.stream({ offset: 0, length: size, signal })) await w.write(chunk as Buffer, signal);
        } finally {
          await ra.close();
        }
      }
    } catch (err) {
      await w.close();
      throw err;
    }
    this.w = w;
  }
}

function rowInfo(r: ContentRow): Info {
  return { digest: r.digest, size: Number(r.size), labels: parseLabels(r.labels), createdAt: BigInt(r.created_at), updatedAt: BigInt(r.updated_at) };
}

/** The backend ingest ref of (namespace, ref): namespaces cannot contain '/'. */
function backendRef(ns: string, ref: string): string {
  return `${ns}/${ref}`;
}
