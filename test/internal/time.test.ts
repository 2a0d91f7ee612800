/** internal/time: the ns clock containerd clients compare their own time.Now() with. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/internal/sys.js';
import { now, parseRFC3339, toRFC3339, toRFC3339Nano } from '../../src/internal/time.js';

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

test('toRFC3339 / toRFC3339Nano: the UTC getters give what toISOString gives, to the second and to the ns', () => {
  const samples = [0, 1, 999, 1000, -1, -1001, 951782400000 /* 2000-02-29 */, Date.UTC(2026, 10, 23, 23, 59, 59, 999), Date.UTC(9999, 11, 31, 23, 59, 59), Date.UTC(10000, 0, 1), Date.UTC(-1, 0, 1)];
  for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 4e12) - 1e12);
  for (const ms of samples) {
    const iso = new Date(ms).toISOString();
    assert.equal(toRFC3339(ms), iso.replace(/\.\d{3}Z$/, 'Z'), String(ms));
    const t = BigInt(ms) * 1_000_000n + 123_456n;
    const nano = toRFC3339Nano(t);
    assert.equal(nano, iso.replace(/\.(\d{3})Z$/, '.$1123456Z'), String(ms));
    if (!/^[+-]/.test(nano)) assert.equal(parseRFC3339(nano), t, `round trip ${nano}`); // RFC 3339 has 4-digit years only
  }
});
