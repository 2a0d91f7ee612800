/**
 * content/proxy: a content Store over containerd's Content service
 * (containerd.services.content.v1.Content), as containerd's
 * content/proxy.proxyContentStore. The namespace and lease travel in the
 * headers from the Ctx; errors come back as errdefs classes.
 */
import type * as grpc from '@grpc/grpc-js';
import { Connection, serverStreamCall, unaryCall } from '../../api/grpc/client.js';
import type { content as api, google, In } from '../../api/grpc/messages.js';
import { validate as validateDigest } from '../../digest/index.js';
import { invalidArgument } from '../../errdefs/index.js';
import type { Ctx } from '../../internal/context.js';
import type { Descriptor, Info, ReaderAt, Status, Store, WalkFn, Writer, WriterOpts } from '../types.js';
import { infoFromProto, infoToProto, statusFromProto } from './convert.js';
import { RemoteReaderAt } from './reader.js';
import { RemoteWriter } from './writer.js';

export const CONTENT_SERVICE = 'containerd.services.content.v1.Content';

export class ProxyContentStore implements Store {
  readonly client: grpc.Client;

  constructor(conn: Connection | grpc.Client) {
    this.client = conn instanceof Connection ? conn.client(CONTENT_SERVICE) : conn;
  }

  private unary<Req, Res>(name: string, req: Req, ctx: Ctx): Promise<Res> {
    return unaryCall<Req, Res>(this.client, name, req, ctx);
  }

  async info(ctx: Ctx, digest: string): Promise<Info> {
    const resp = await this.unary<In<api.InfoRequest>, api.InfoResponse>('Info', { digest }, ctx);
    return infoFromProto(resp.info);
  }

  async update(ctx: Ctx, info: Pick<Info, 'digest'> & Partial<Info>, fieldpaths: string[] = []): Promise<Info> {
    const resp = await this.unary<In<api.UpdateRequest>, api.UpdateResponse>(
      'Update',
      { info: infoToProto(info), update_mask: { paths: fieldpaths } },
      ctx,
    );
    return infoFromProto(resp.info);
  }

  async walk(ctx: Ctx, fn: WalkFn, filters: string[] = []): Promise<void> {
    const stream = serverStreamCall<In<api.ListContentRequest>, api.ListContentResponse>(this.client, 'List', { filters }, ctx);
    for await (const msg of stream) {
      for (const i of msg.info) await fn(infoFromProto(i));
    }
  }

  async delete(ctx: Ctx, digest: string): Promise<void> {
    await this.unary<In<api.DeleteContentRequest>, google.Empty>('Delete', { digest }, ctx);
  }

  /** Info first (for the size and NotFound), then reads on demand. */
  async readerAt(ctx: Ctx, desc: Pick<Descriptor, 'digest'> & Partial<Descriptor>): Promise<ReaderAt> {
    const info = await this.info(ctx, desc.digest);
    return new RemoteReaderAt(this.client, ctx, desc.digest, info.size);
  }

  async status(ctx: Ctx, ref: string): Promise<Status> {
    const resp = await this.unary<In<api.StatusRequest>, api.StatusResponse>('Status', { ref }, ctx);
    return statusFromProto(resp.status);
  }

  async listStatuses(ctx: Ctx, filters: string[] = []): Promise<Status[]> {
    const resp = await this.unary<In<api.ListStatusesRequest>, api.ListStatusesResponse>('ListStatuses', { filters }, ctx);
    return resp.statuses.map(statusFromProto);
  }

  async abort(ctx: Ctx, ref: string): Promise<void> {
    await this.unary<In<api.AbortRequest>, google.Empty>('Abort', { ref }, ctx);
  }

  async writer(ctx: Ctx, opts: WriterOpts): Promise<Writer> {
    if (!opts.ref) throw invalidArgument('ref must not be empty');
    // containerd accepts any expected digest here and fails only at commit; refuse it up front.
    if (opts.desc?.digest) validateDigest(opts.desc.digest);
    return RemoteWriter.open(this.client, ctx, opts.ref, opts.desc?.size ?? 0, opts.desc?.digest ?? '');
  }
}
