// image-store.mjs: records a generated single-manifest OCI image in a dist
// root through the library (shared by demo-image.mjs and gen-image.mjs).
import { createHash } from 'node:crypto';
import { openEmbedded } from '../build/src/services/embedded.js';
import { writeBlob } from '../build/src/content/helpers.js';

export const sha = (b) => 'sha256:' + createHash('sha256').update(b).digest('hex');

/**
 * Writes the layers (each { desc, src }: src a Buffer array or a readable
 * stream of exactly desc.size bytes), the config (a Buffer) and a manifest
 * naming them into ROOT's content store, labels the manifest for the GC, and
 * (re)creates the image NAME. Resolves with the manifest descriptor.
 */
export async function storeImage(root, name, { config, layers }) {
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: layers.map((l) => l.desc),
  }));
  const svc = await openEmbedded(root);
  try {
    const ctx = { namespace: process.env.CONTAINERD_NAMESPACE || 'default' };
    const put = (desc, src) => writeBlob(ctx, svc.content, `gen-${desc.digest}`, src, { size: desc.size, digest: desc.digest });
    for (const l of layers) await put(l.desc, l.src);
    for (const b of [config, manifest]) await put({ digest: sha(b), size: b.length }, [b]);
    const labels = {
      'containerd.io/gc.ref.content.config': sha(config),
      ...Object.fromEntries(layers.map((l, i) => [`containerd.io/gc.ref.content.l.${i}`, l.desc.digest])),
    };
    await svc.content.update(ctx, { digest: sha(manifest), labels }, Object.keys(labels).map((k) => `labels.${k}`));
    const target = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length };
    await svc.images.delete(ctx, name).catch(() => undefined);
    await svc.images.create(ctx, { name, target });
    return target;
  } finally {
    await svc.close();
  }
}
