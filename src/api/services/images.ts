/**
 * containerd.services.images.v1.Images over an ImageStore (containerd's
 * services/images/local.go): Get, List, Create, Update (update_mask field
 * paths), Delete (sync: a garbage collection runs before the reply).
 * Publishes /images/create, /images/update and /images/delete.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import type { Publisher } from '../../events/types.js';
import { Topics } from '../../events/types.js';
import type { Image, ImageStore } from '../../images/image.js';
import type { Ctx } from '../../internal/context.js';
import { serviceError } from '../grpc/errors.js';
import { unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { google, images } from '../grpc/messages.js';
import { descriptorFromProto, descriptorToProto, fromTs, labelsOut, maskPaths, ts } from './convert.js';

export interface ImagesServiceOptions extends HandlerOptions {
  publisher?: Publisher;
  /**
   * Runs a garbage collection (Delete with sync). Without it, the store's own
   * `delete(…, {sync})` is relied on.
   */
  collect?: (ctx: Ctx) => Promise<unknown>;
}

export function imageToProto(img: Image): images.Image {
  return { name: img.name, labels: labelsOut(img.labels), target: descriptorToProto(img.target), created_at: ts(img.createdAt), updated_at: ts(img.updatedAt) };
}

export function imageFromProto(img: images.Image | null | undefined): Image {
  return {
    name: img?.name ?? '',
    labels: { ...(img?.labels ?? {}) },
    target: descriptorFromProto(img?.target),
    createdAt: fromTs(img?.created_at),
    updatedAt: fromTs(img?.updated_at),
  };
}

const EVENT_PKG = 'containerd.services.images.v1';

export function imagesService(store: ImageStore, opts: ImagesServiceOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError };
  const nameRequired = (name: string | undefined) => {
    if (!name) throw serviceError(grpcStatus.INVALID_ARGUMENT, 'Image.Name required');
  };
  return {
    Get: unary<images.GetImageRequest, images.GetImageResponse>(async (req, ctx) => ({ image: imageToProto(await store.get(ctx, req.name)) }), h),

    List: unary<images.ListImagesRequest, images.ListImagesResponse>(async (req, ctx) => ({
      images: (await store.list(ctx, req.filters ?? [])).map(imageToProto),
    }), h),

    Create: unary<images.CreateImageRequest, images.CreateImageResponse>(async (req, ctx) => {
      nameRequired(req.image?.name);
      const created = await store.create(ctx, imageFromProto(req.image));
      const image = imageToProto(created);
      await opts.publisher?.publish(ctx, Topics.ImageCreate, { name: image.name, labels: image.labels }, `${EVENT_PKG}.ImageCreate`);
      return { image };
    }, h),

    Update: unary<images.UpdateImageRequest, images.UpdateImageResponse>(async (req, ctx) => {
      nameRequired(req.image?.name);
      const img = imageFromProto(req.image);
      const paths = maskPaths(req.update_mask);
      // With field paths an unset target is just absent; a full replace takes
      // the whole record (an unset target then fails validation, as containerd).
      const input: Partial<Image> & Pick<Image, 'name'> = { name: img.name, labels: img.labels };
      if (req.image?.target || paths.length === 0) input.target = img.target;
      const updated = imageToProto(await store.update(ctx, input, paths));
      await opts.publisher?.publish(ctx, Topics.ImageUpdate, { name: updated.name, labels: updated.labels }, `${EVENT_PKG}.ImageUpdate`);
      return { image: updated };
    }, h),

    Delete: unary<images.DeleteImageRequest, google.Empty>(async (req, ctx) => {
      await store.delete(ctx, req.name, { sync: req.sync && !opts.collect });
      await opts.publisher?.publish(ctx, Topics.ImageDelete, { name: req.name }, `${EVENT_PKG}.ImageDelete`);
      if (req.sync && opts.collect) await opts.collect(ctx);
      return {};
    }, h),
  };
}
