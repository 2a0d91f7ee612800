/**
 * remotes: talking to registries (containerd's remotes package). A Resolver
 * turns a reference into a canonical name and a root descriptor; Fetchers
 * and Pushers move blobs by descriptor.
 */
import type { Readable } from 'node:stream';
import type { Descriptor } from '../content/types.js';
import type { Ctx } from '../internal/context.js';

export interface Resolved {
  /** Canonical name, e.g. "docker.io/library/redis:latest". */
  name: string;
  /** Root descriptor (index or manifest). */
  desc: Descriptor;
}

export interface Resolver {
  resolve(ctx: Ctx, ref: string): Promise<Resolved>;
  fetcher(ctx: Ctx, ref: string): Promise<Fetcher>;
  pusher(ctx: Ctx, ref: string): Promise<Pusher>;
}

export interface FetchOpts {
  /** Resume from this byte offset (Range request). */
  offset?: number;
}

export interface Fetcher {
  /**
   * Streams the blob's bytes (from opts.offset). The stream errors if the
   * transfer breaks. Callers verify digest and size (the fetch handler does).
   */
  fetch(ctx: Ctx, desc: Descriptor, opts?: FetchOpts): Promise<Readable>;
}

export interface PushWriter {
  write(chunk: Uint8Array, signal?: AbortSignal): Promise<void>;
  /** Completes the upload; verifies size/digest as the registry reports them. */
  commit(): Promise<void>;
  abort(): Promise<void>;
}

export interface PushOptions {
  /** Labels of the blob in the content store (containerd.io/distribution.source.*: mount candidates). */
  sources?: Record<string, string>;
  /** Put a manifest by digest even when the reference has a tag (for all but the root). */
  byDigest?: boolean;
}

export interface Pusher {
  /**
   * Starts pushing desc. Rejects with AlreadyExists when the registry has it
   * (or a cross-repository mount succeeded): nothing to write then.
   */
  push(ctx: Ctx, desc: Descriptor, opts?: PushOptions): Promise<PushWriter>;
}
