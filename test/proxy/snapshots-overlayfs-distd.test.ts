/**
 * The shared snapshotter suite through the snapshots proxy, against our distd
 * (own process), `overlayfs` snapshotter (the test process mounts what distd
 * returns: needs root). native: snapshots-distd.test.ts.
 */
import { test } from 'node:test';
import { snapshotterSuite } from '../snapshots/testsuite.js';
import { distdUnavailable, lazyRemote, snapshotterFactory, startDistd } from './env.js';

const why = distdUnavailable();
if (why) test('snapshots proxy against distd (overlayfs)', { skip: why }, () => {});
else snapshotterSuite('proxy → distd overlayfs', snapshotterFactory(lazyRemote(startDistd), 'overlayfs'));
