/**
 * namespaces/proxy: the namespace store over containerd's Namespaces service
 * (containerd.services.namespaces.v1.Namespaces), as containerd's
 * remoteNamespaces.
 *
 * The service is not namespaced, but containerd publishes its events
 * (/namespaces/create…) in the caller's namespace and fails without one:
 * like ctr, calls without ctx.namespace send the default namespace.
 *
 * labels(): containerd 1.6 answers Get of an unknown namespace with empty
 * labels; a daemon answering NotFound is read the same way, so labels() of an
 * unknown namespace is {} whichever daemon is behind the socket.
 */
import type * as grpc from '@grpc/grpc-js';
import { Connection, unaryCall } from '../api/grpc/client.js';
import type { google, In, namespaces as api } from '../api/grpc/messages.js';
import { isNotFound } from '../errdefs/index.js';
import { DEFAULT_NAMESPACE, type Ctx } from '../internal/context.js';
import type { NamespaceStore } from './types.js';

export const NAMESPACES_SERVICE = 'containerd.services.namespaces.v1.Namespaces';

export class ProxyNamespaceStore implements NamespaceStore {
  readonly client: grpc.Client;

  constructor(conn: Connection | grpc.Client) {
    this.client = conn instanceof Connection ? conn.client(NAMESPACES_SERVICE) : conn;
  }

  private call<Req, Res>(method: string, req: Req, ctx: Ctx): Promise<Res> {
    return unaryCall<Req, Res>(this.client, method, req, ctx.namespace ? ctx : { ...ctx, namespace: DEFAULT_NAMESPACE });
  }

  async create(ctx: Ctx, name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.call<In<api.CreateNamespaceRequest>, api.CreateNamespaceResponse>('Create', { namespace: { name, labels } }, ctx);
  }

  async labels(ctx: Ctx, name: string): Promise<Record<string, string>> {
    try {
      const resp = await this.call<In<api.GetNamespaceRequest>, api.GetNamespaceResponse>('Get', { name }, ctx);
      return { ...(resp.namespace?.labels ?? {}) };
    } catch (err) {
      if (isNotFound(err)) return {};
      throw err;
    }
  }

  /** Update with the one field path labels.<key>; an empty value clears it. */
  async setLabel(ctx: Ctx, name: string, key: string, value: string): Promise<void> {
    await this.call<In<api.UpdateNamespaceRequest>, api.UpdateNamespaceResponse>(
      'Update',
      { namespace: { name, labels: { [key]: value } }, update_mask: { paths: [`labels.${key}`] } },
      ctx,
    );
  }

  async list(ctx: Ctx): Promise<string[]> {
    const resp = await this.call<In<api.ListNamespacesRequest>, api.ListNamespacesResponse>('List', {}, ctx);
    return resp.namespaces.map((n) => n.name);
  }

  async delete(ctx: Ctx, name: string): Promise<void> {
    await this.call<In<api.DeleteNamespaceRequest>, google.Empty>('Delete', { name }, ctx);
  }
}
