/** internal/time: the ns clock containerd clients compare their own time.Now() with. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/internal/sys.js';
import { now } from '../../src/internal/time.js';

test('now(): the real-time clock at ns precision, strictly increasing', () => {
  const rt = native?.realtimeNs?.bind(native);
  assert.ok(rt, 'the native addon provides CLOCK_REALTIME');
  let prev = 0n;
  for (let i = 0; i < 10_000; i++) {
    const lo = rt();
    const t = now();
    const hi = rt();
    // strictly increasing: a stamp may run ahead of the clock by the calls made within one ns
    assert.ok(t > prev, `now() went from ${prev} to ${t}`);
    assert.ok(t >= lo && t <= hi + BigInt(i + 1), `now() ${t} outside the real-time clock's [${lo}, ${hi}]`);
    prev = t;
  }
  const ms = BigInt(Date.now()) * 1_000_000n;
  assert.ok(now() >= ms, 'never behind Date.now()');
});
