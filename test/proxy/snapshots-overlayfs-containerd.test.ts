/**
 * The shared snapshotter suite through the snapshots proxy, against a real
 * containerd 1.6's `overlayfs` snapshotter (the test process mounts what the
 * daemon returns: needs root). native: snapshots-containerd.test.ts.
 */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { snapshotterSuite } from '../snapshots/testsuite.js';
import { lazyRemote, snapshotterFactory } from './env.js';

const why = containerdUnavailable();
if (why) {
  test('snapshots proxy against containerd (overlayfs)', { skip: why }, () => {});
} else {
  snapshotterSuite('proxy → containerd overlayfs', snapshotterFactory(lazyRemote(startContainerd), 'overlayfs'));
}
