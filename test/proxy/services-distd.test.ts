/** Namespaces, leases, images proxies and connect(), against our distd (own process). */
import { test } from 'node:test';
import { distdUnavailable, lazyRemote, startDistd } from './env.js';
import { servicesChecks } from './services.js';

const why = distdUnavailable();
if (why) test('services proxies against distd', { skip: why }, () => {});
else servicesChecks('distd', lazyRemote(startDistd));
