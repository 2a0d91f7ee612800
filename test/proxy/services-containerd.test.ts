/** Namespaces, leases, images proxies and connect(), against a real containerd 1.6. */
import { test } from 'node:test';
import { containerdUnavailable, startContainerd } from '../util/containerd.js';
import { lazyRemote } from './env.js';
import { servicesChecks } from './services.js';

const why = containerdUnavailable();
if (why) test('services proxies against containerd', { skip: why }, () => {});
else servicesChecks('containerd', lazyRemote(startContainerd));
