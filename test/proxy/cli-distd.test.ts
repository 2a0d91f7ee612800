/** `dist --address` vs `ctr --address` against our distd (own process). */
import { test } from 'node:test';
import { existsSync } from 'node:fs';
import { cliChecks } from './cli.js';
import { distdUnavailable, lazyRemote, startDistd } from './env.js';

const why = distdUnavailable() ?? (existsSync('/usr/bin/ctr') ? undefined : 'ctr not installed');
if (why) test('dist CLI against distd', { skip: why }, () => {});
else cliChecks('distd', lazyRemote(startDistd));
