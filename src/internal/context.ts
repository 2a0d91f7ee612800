/**
 * The options bag that stands for Go's ctx on every library call:
 * cancellation, the namespace and the lease the call works under.
 */
export interface Ctx {
  signal?: AbortSignal;
  /** containerd namespace; required by namespaced (metadata) stores. */
  namespace?: string;
  /** Lease id: objects written under it become its resources. */
  lease?: string;
}

export const DEFAULT_NAMESPACE = 'default';
