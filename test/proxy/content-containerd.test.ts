/** The shared content suite through the content proxy, against a real containerd 1.6. */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { contentSuite } from '../content/testsuite.js';
import { contentFactory, lazyRemote } from './env.js';

const why = containerdUnavailable();
if (why) {
  test('content proxy against containerd', { skip: why }, () => {});
} else {
  const get = lazyRemote(startContainerd);
  contentSuite('proxy → containerd', contentFactory(get, { containerd16: true }));
}
