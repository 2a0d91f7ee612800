/**
 * content: the content-addressed blob store's interfaces (containerd's
 * content package). Small interfaces, one per role; Store is their union.
 *
 * Implementations: content/local (blobs on disk, no namespaces),
 * metadata/content (namespaced, lease-aware wrapper over a local store),
 * content/proxy (gRPC client of containerd's Content service).
 * Every one passes test/content/testsuite.ts.
 */
import type { Readable } from 'node:stream';
import type { Ctx } from '../internal/context.js';
import type { Timestamp } from '../internal/time.js';

/** OCI descriptor (subset used for content addressing). */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  urls?: string[];
  platform?: Platform;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

export interface Info {
  digest: string;
  size: number;
  createdAt: Timestamp;
  updatedAt: Timestamp;
  labels: Record<string, string>;
}

export interface Status {
  ref: string;
  offset: number;
  total: number;
  expected: string;
  startedAt: Timestamp;
  updatedAt: Timestamp;
}

/** Random-access reader over one committed blob. Always close it. */
export interface ReaderAt {
  readonly size: number;
  /** A local file holding the blob, when there is one (other processes may read it directly). */
  readonly path?: string;
  /** Reads up to buf.length bytes at offset; returns bytes read (0 at EOF). */
  readAt(buf: Uint8Array, offset: number): Promise<number>;
  /** A stream of [offset, offset+length) (default: to the end). */
  stream(opts?: { offset?: number; length?: number; signal?: AbortSignal }): Readable;
  close(): Promise<void>;
}

export interface Provider {
  /** Opens a committed blob. NotFound when absent (or not visible in ctx.namespace). */
  readerAt(ctx: Ctx, desc: Pick<Descriptor, 'digest'> & Partial<Descriptor>): Promise<ReaderAt>;
}

export interface WriterOpts {
  /** Ingest reference: identifies a resumable upload. Required. */
  ref: string;
  /** Expected descriptor (size/digest), when known. */
  desc?: Partial<Descriptor>;
}

export interface CommitOpts {
  labels?: Record<string, string>;
}

/**
 * Writer for one ingest. Only one live writer per ref (others: Unavailable).
 * Commit always closes the writer, even on error; a failed commit leaves the
 * ingest in place so it can be resumed.
 */
export interface Writer {
  readonly ref: string;
  /**
   * Appends data at the current offset. Unless retainsChunks, the chunk is
   * the caller's again once the promise settles (it may refill it).
   */
  write(chunk: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** True when written chunks are still referenced after write() settles (the caller must not reuse them). */
  readonly retainsChunks?: boolean;
  /**
   * With retainsChunks: a buffer of size bytes to fill with the next chunk to
   * write, memory the writer's consumers handed back when done with it (or
   * new). Saves a writer that retains chunks fresh memory for each.
   */
  chunkBuffer?(size: number): Buffer;
  /** Digest of everything written so far. */
  digest(): string;
  status(): Promise<Status>;
  /** Truncates to size (only 0 or the current offset are cheap; others re-hash). */
  truncate(size: number): Promise<void>;
  /**
   * Verifies and atomically moves the data into the store.
   * size 0 / expected '' mean "don't check". Size or digest mismatch:
   * FailedPrecondition (ingest kept). Digest already present: AlreadyExists.
   */
  commit(ctx: Ctx, size: number, expected: string, opts?: CommitOpts): Promise<void>;
  /** Releases the ref lock; the ingest stays resumable. */
  close(): Promise<void>;
}

export interface Ingester {
  writer(ctx: Ctx, opts: WriterOpts): Promise<Writer>;
}

export type WalkFn = (info: Info) => void | Promise<void>;

export interface Manager {
  info(ctx: Ctx, digest: string): Promise<Info>;
  /** Updates labels; fieldpaths like `labels` or `labels.k` (empty: all labels). */
  update(ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths?: string[]): Promise<Info>;
  /** Calls fn for every blob matching any filter (no filters: all). */
  walk(ctx: Ctx, fn: WalkFn, filters?: string[]): Promise<void>;
  delete(ctx: Ctx, digest: string): Promise<void>;
}

export interface IngestManager {
  status(ctx: Ctx, ref: string): Promise<Status>;
  listStatuses(ctx: Ctx, filters?: string[]): Promise<Status[]>;
  abort(ctx: Ctx, ref: string): Promise<void>;
}

export interface Store extends Provider, Ingester, Manager, IngestManager {}
