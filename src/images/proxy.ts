/**
 * images/proxy: the image store over containerd's Images service
 * (containerd.services.images.v1.Images), as containerd's remoteImages.
 * Descriptors travel as containerd.types.Descriptor (media type, digest,
 * size, annotations: urls and platform are not part of the 1.6 API).
 */
import type * as grpc from '@grpc/grpc-js';
import { Connection, unaryCall } from '../api/grpc/client.js';
import { int64 } from '../api/grpc/loader.js';
import type { google, images as api, In, types } from '../api/grpc/messages.js';
import { timestampFromProto, timestampToProto } from '../api/grpc/timestamp.js';
import type { Descriptor } from '../content/types.js';
import type { Ctx } from '../internal/context.js';
import type { Image, ImageStore } from './image.js';

export const IMAGES_SERVICE = 'containerd.services.images.v1.Images';

export function descriptorFromProto(d: types.Descriptor | null | undefined): Descriptor {
  const out: Descriptor = { mediaType: d?.media_type ?? '', digest: d?.digest ?? '', size: Number(d?.size ?? 0) };
  if (d?.annotations && Object.keys(d.annotations).length > 0) out.annotations = { ...d.annotations };
  return out;
}

export function descriptorToProto(d: Partial<Descriptor> | undefined): In<types.Descriptor> {
  return { media_type: d?.mediaType ?? '', digest: d?.digest ?? '', size: int64(d?.size ?? 0), annotations: d?.annotations ?? {} };
}

export function imageFromProto(i: api.Image | null | undefined): Image {
  return {
    name: i?.name ?? '',
    labels: { ...(i?.labels ?? {}) },
    target: descriptorFromProto(i?.target),
    createdAt: timestampFromProto(i?.created_at) ?? 0n,
    updatedAt: timestampFromProto(i?.updated_at) ?? 0n,
  };
}

export function imageToProto(i: Pick<Image, 'name'> & Partial<Image>): In<api.Image> {
  return {
    name: i.name,
    labels: i.labels ?? {},
    target: descriptorToProto(i.target),
    created_at: i.createdAt !== undefined ? timestampToProto(i.createdAt) : null,
    updated_at: i.updatedAt !== undefined ? timestampToProto(i.updatedAt) : null,
  };
}

export class ProxyImageStore implements ImageStore {
  readonly client: grpc.Client;

  constructor(conn: Connection | grpc.Client) {
    this.client = conn instanceof Connection ? conn.client(IMAGES_SERVICE) : conn;
  }

  async get(ctx: Ctx, name: string): Promise<Image> {
    const resp = await unaryCall<In<api.GetImageRequest>, api.GetImageResponse>(this.client, 'Get', { name }, ctx);
    return imageFromProto(resp.image);
  }

  async list(ctx: Ctx, filters: string[] = []): Promise<Image[]> {
    const resp = await unaryCall<In<api.ListImagesRequest>, api.ListImagesResponse>(this.client, 'List', { filters }, ctx);
    return resp.images.map(imageFromProto);
  }

  async create(ctx: Ctx, img: Pick<Image, 'name' | 'target'> & Partial<Image>): Promise<Image> {
    const resp = await unaryCall<In<api.CreateImageRequest>, api.CreateImageResponse>(this.client, 'Create', { image: imageToProto(img) }, ctx);
    return imageFromProto(resp.image);
  }

  /** No field paths: no update_mask (the daemon replaces labels and target), as containerd's client. */
  async update(ctx: Ctx, img: Pick<Image, 'name'> & Partial<Image>, fieldpaths: string[] = []): Promise<Image> {
    const resp = await unaryCall<In<api.UpdateImageRequest>, api.UpdateImageResponse>(
      this.client,
      'Update',
      { image: imageToProto(img), update_mask: fieldpaths.length > 0 ? { paths: fieldpaths } : null },
      ctx,
    );
    return imageFromProto(resp.image);
  }

  async delete(ctx: Ctx, name: string, opts: { sync?: boolean } = {}): Promise<void> {
    await unaryCall<In<api.DeleteImageRequest>, google.Empty>(this.client, 'Delete', { name, sync: opts.sync ?? false }, ctx);
  }
}
