/**
 * The shared snapshotter suite through the snapshots proxy, against our distd
 * (own process), `native` snapshotter (the test process mounts what distd
 * returns: needs root). overlayfs: snapshots-overlayfs-distd.test.ts.
 */
import { test } from 'node:test';
import { snapshotterSuite } from '../snapshots/testsuite.js';
import { distdUnavailable, lazyRemote, snapshotterFactory, startDistd } from './env.js';

const why = distdUnavailable();
if (why) test('snapshots proxy against distd (native)', { skip: why }, () => {});
else snapshotterSuite('proxy → distd native', snapshotterFactory(lazyRemote(startDistd), 'native'));
