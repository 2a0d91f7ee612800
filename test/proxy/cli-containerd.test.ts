/** `dist --address` vs `ctr --address` against a real containerd 1.6. */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { cliChecks } from './cli.js';
import { lazyRemote } from './env.js';

const why = containerdUnavailable();
if (why) test('dist CLI against containerd', { skip: why }, () => {});
else cliChecks('containerd', lazyRemote(startContainerd));
