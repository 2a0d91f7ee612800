/**
 * The shared snapshotter suite through the snapshots proxy, against a real
 * containerd 1.6's `native` snapshotter (the test process mounts what the
 * daemon returns: needs root). overlayfs: snapshots-overlayfs-containerd.test.ts.
 */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { snapshotterSuite } from '../snapshots/testsuite.js';
import { lazyRemote, snapshotterFactory } from './env.js';

const why = containerdUnavailable();
if (why) {
  test('snapshots proxy against containerd (native)', { skip: why }, () => {});
} else {
  snapshotterSuite('proxy → containerd native', snapshotterFactory(lazyRemote(startContainerd), 'native'));
}
