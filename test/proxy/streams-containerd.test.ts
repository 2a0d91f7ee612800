/** Content proxy streams (chunking, cancellation, resume) against a real containerd 1.6. */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { lazyRemote } from './env.js';
import { streamChecks } from './streams.js';

const why = containerdUnavailable();
if (why) test('content proxy streams against containerd', { skip: why }, () => {});
else streamChecks('containerd', lazyRemote(startContainerd));
