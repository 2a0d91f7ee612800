/** Content proxy streams (chunking, cancellation, resume) against our distd (own process). */
import { test } from 'node:test';
import { distdUnavailable, lazyRemote, startDistd } from './env.js';
import { streamChecks } from './streams.js';

const why = distdUnavailable();
if (why) test('content proxy streams against distd', { skip: why }, () => {});
else streamChecks('distd', lazyRemote(startDistd));
