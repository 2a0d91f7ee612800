/**
 * metadata: containerd's per-call headers and cancellation at the gRPC edge.
 *
 * - `containerd-namespace`: the namespace a call works in (namespaces/grpc.go).
 *   A namespaced call without it fails FailedPrecondition
 *   "namespace is required"; an invalid name fails InvalidArgument.
 * - `containerd-lease`: objects created during the call join that lease.
 * - A server call's 'cancelled' event (client cancel, deadline, disconnect)
 *   aborts the Ctx.signal handed to handlers.
 */
import { Metadata } from '@grpc/grpc-js';
import { DistError, canceled, failedPrecondition, invalidArgument } from '../../errdefs/index.js';
import { isValid, validate } from '../../identifiers/index.js';
import type { Ctx } from '../../internal/context.js';

export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

/**
 * The first string value of a header, or undefined when absent/empty. A
 * header sent several times (grpc-go's metadata.Join puts the newest value
 * first) reaches Node joined as "a, b": the first element counts, as in
 * containerd's server (values[0]). Namespaces and lease ids hold no commas.
 */
function first(md: Metadata, key: string): string | undefined {
  for (const v of md.get(key)) {
    const s = (typeof v === 'string' ? v : v.toString('utf8')).split(',')[0].trim();
    return s === '' ? undefined : s;
  }
  return undefined;
}

/** The namespace header as sent (unvalidated), or undefined. */
export function namespaceFromMetadata(md: Metadata): string | undefined {
  return first(md, NAMESPACE_HEADER);
}

/** The lease header, or undefined. */
export function leaseFromMetadata(md: Metadata): string | undefined {
  return first(md, LEASE_HEADER);
}

/**
 * The validated namespace of a namespaced call (containerd's
 * namespaces.NamespaceRequired): FailedPrecondition when missing,
 * InvalidArgument "namespace validation: …" when not an identifier.
 */
export function requireNamespace(md: Metadata): string {
  const ns = namespaceFromMetadata(md);
  if (ns === undefined) throw failedPrecondition('namespace is required');
  try {
    validate(ns);
  } catch (err) {
    const detail = err instanceof DistError ? err.detail : String(err);
    throw invalidArgument(`namespace validation: ${detail}`, err);
  }
  return ns;
}

/** The part of a grpc-js server call this module needs. */
export interface ServerCallLike {
  metadata: Metadata;
  cancelled?: boolean;
  on(event: 'cancelled', listener: (...args: any[]) => void): unknown;
}

/** An AbortSignal that aborts (reason: Canceled DistError) when the call is cancelled. */
export function callSignal(call: ServerCallLike): AbortSignal {
  const ac = new AbortController();
  const abort = () => {
    if (!ac.signal.aborted) ac.abort(canceled('call cancelled by client'));
  };
  if (call.cancelled) abort();
  else call.on('cancelled', abort);
  return ac.signal;
}

export interface CtxOptions {
  /**
   * Require and validate the namespace header (default true). With false the
   * namespace is passed through when present and valid, omitted otherwise.
   */
  namespaced?: boolean;
}

/** Builds the library Ctx of a server call: signal, namespace, lease. Throws errdefs errors. */
export function ctxFromCall(call: ServerCallLike, opts: CtxOptions = {}): Ctx {
  const ctx: Ctx = { signal: callSignal(call) };
  if (opts.namespaced ?? true) {
    ctx.namespace = requireNamespace(call.metadata);
  } else {
    const ns = namespaceFromMetadata(call.metadata);
    if (ns !== undefined && isValid(ns)) ctx.namespace = ns;
  }
  const lease = leaseFromMetadata(call.metadata);
  if (lease !== undefined) ctx.lease = lease;
  return ctx;
}

/** Client side: the outgoing headers for a Ctx (namespace and lease when set). */
export function metadataFromCtx(ctx: Ctx, md: Metadata = new Metadata()): Metadata {
  if (ctx.namespace) md.set(NAMESPACE_HEADER, ctx.namespace);
  if (ctx.lease) md.set(LEASE_HEADER, ctx.lease);
  return md;
}
