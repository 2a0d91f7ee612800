import { OverlaySnapshotter } from '../../src/snapshots/overlay/index.js';
import { snapshotterSuite } from './testsuite.js';

snapshotterSuite('overlayfs', async (_ctx, root) => {
  const snapshotter = await OverlaySnapshotter.open(root);
  return { snapshotter, cleanup: () => snapshotter.close() };
});
