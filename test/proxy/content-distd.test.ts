/** The shared content suite through the content proxy, against our distd (own process). */
import { test } from 'node:test';
import { contentSuite } from '../content/testsuite.js';
import { contentFactory, distdUnavailable, lazyRemote, startDistd } from './env.js';

const why = distdUnavailable();
if (why) test('content proxy against distd', { skip: why }, () => {});
else contentSuite('proxy → distd', contentFactory(lazyRemote(startDistd)));
