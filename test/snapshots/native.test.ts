import { NativeSnapshotter } from '../../src/snapshots/native/index.js';
import { snapshotterSuite } from './testsuite.js';

snapshotterSuite('native', async (_ctx, root) => {
  const snapshotter = await NativeSnapshotter.open(root);
  return { snapshotter, cleanup: () => snapshotter.close() };
});
