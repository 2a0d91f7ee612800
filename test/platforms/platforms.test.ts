import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as platforms from '../../src/platforms/index.js';
import { isInvalidArgument } from '../../src/errdefs/index.js';
import { variantFromCpuinfo } from '../../src/platforms/host.js';
import type { Platform } from '../../src/content/types.js';

const hostOS = platforms.hostOS();
const hostArch = platforms.hostArch();
const hostVariant = hostArch === 'arm' && platforms.cpuVariant() !== 'v7' ? platforms.cpuVariant() : '';
const join = (...s: string[]) => s.filter(Boolean).join('/');

// containerd 1.6 platforms_test.go TestParseSelector, as a table.
const parseCases: Array<{ input: string; expected: Platform; formatted: string; matches?: Platform[] }> = [
  { input: 'linux/arm64', expected: { os: 'linux', architecture: 'arm64' }, formatted: 'linux/arm64',
    matches: [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'aarch64', variant: 'v8' }, { os: 'linux', architecture: 'arm64', variant: 'v8' }] },
  { input: 'linux/arm64/v8', expected: { os: 'linux', architecture: 'arm64', variant: 'v8' }, formatted: 'linux/arm64/v8',
    matches: [{ os: 'linux', architecture: 'aarch64' }, { os: 'linux', architecture: 'aarch64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }] },
  { input: 'linux/arm', expected: { os: 'linux', architecture: 'arm' }, formatted: 'linux/arm',
    matches: [{ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'armhf' }, { os: 'linux', architecture: 'arm', variant: '7' }] },
  { input: 'linux/arm/v6', expected: { os: 'linux', architecture: 'arm', variant: 'v6' }, formatted: 'linux/arm/v6',
    matches: [{ os: 'linux', architecture: 'armel' }] },
  { input: 'linux/arm/v7', expected: { os: 'linux', architecture: 'arm', variant: 'v7' }, formatted: 'linux/arm/v7',
    matches: [{ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'armhf' }] },
  { input: 'arm', expected: { os: hostOS, architecture: 'arm' }, formatted: join(hostOS, 'arm') },
  { input: 'armel', expected: { os: hostOS, architecture: 'arm', variant: 'v6' }, formatted: join(hostOS, 'arm/v6') },
  { input: 'armhf', expected: { os: hostOS, architecture: 'arm' }, formatted: join(hostOS, 'arm') },
  { input: 'Aarch64', expected: { os: hostOS, architecture: 'arm64' }, formatted: join(hostOS, 'arm64') },
  { input: 'x86_64', expected: { os: hostOS, architecture: 'amd64' }, formatted: join(hostOS, 'amd64') },
  { input: 'Linux/x86_64', expected: { os: 'linux', architecture: 'amd64' }, formatted: 'linux/amd64' },
  { input: 'i386', expected: { os: hostOS, architecture: '386' }, formatted: join(hostOS, '386') },
  { input: 'linux', expected: { os: 'linux', architecture: hostArch, ...(hostVariant ? { variant: hostVariant } : {}) }, formatted: join('linux', hostArch, hostVariant) },
  { input: 's390x', expected: { os: hostOS, architecture: 's390x' }, formatted: join(hostOS, 's390x') },
  { input: 'linux/s390x', expected: { os: 'linux', architecture: 's390x' }, formatted: 'linux/s390x' },
  { input: 'macOS', expected: { os: 'darwin', architecture: hostArch, ...(hostVariant ? { variant: hostVariant } : {}) }, formatted: join('darwin', hostArch, hostVariant) },
  { input: 'windows/amd64', expected: { os: 'windows', architecture: 'amd64' }, formatted: 'windows/amd64' },
  { input: 'linux/amd64/v3', expected: { os: 'linux', architecture: 'amd64', variant: 'v3' }, formatted: 'linux/amd64/v3' },
  { input: 'linux/x86-64/v1', expected: { os: 'linux', architecture: 'amd64' }, formatted: 'linux/amd64' },
];

for (const c of parseCases) {
  test(`parse ${JSON.stringify(c.input)}`, () => {
    const p = platforms.parse(c.input);
    assert.deepEqual(p, c.expected);
    const m = platforms.newMatcher(p);
    assert.ok(m.match(c.expected), 'matches its own parse');
    for (const q of c.matches ?? []) assert.ok(m.match(q), `${c.input} should match ${JSON.stringify(q)}`);
    assert.equal(platforms.format(p), c.formatted);
    // Formatting is stable under re-parse.
    assert.equal(platforms.format(platforms.parse(platforms.format(p))), c.formatted);
  });
}

test('parse rejects malformed specifiers with InvalidArgument', () => {
  for (const bad of ['', '/linux/arm', 'linux/arm/', 'linux /arm', 'linux/&arm', 'linux/arm/foo/bar', '*', 'linux/*', 'nonsense']) {
    assert.throws(() => platforms.parse(bad), (err) => isInvalidArgument(err), bad);
  }
  assert.throws(() => platforms.parse('linux/*'), /wildcards not yet supported: invalid argument/);
  assert.throws(() => platforms.parse('nonsense'), /unknown operating system or architecture: invalid argument/);
});

test('normalize: aliases and variant rules', () => {
  const n = (architecture: string, variant?: string, os = 'linux') => platforms.format(platforms.normalize({ os, architecture, ...(variant !== undefined ? { variant } : {}) }));
  assert.equal(n('x86_64'), 'linux/amd64');
  assert.equal(n('amd64', 'v1'), 'linux/amd64');
  assert.equal(n('amd64', 'v2'), 'linux/amd64/v2');
  assert.equal(n('aarch64'), 'linux/arm64');
  assert.equal(n('arm64', 'v8'), 'linux/arm64');
  assert.equal(n('arm64', '8'), 'linux/arm64');
  assert.equal(n('arm64', 'v9'), 'linux/arm64/v9');
  assert.equal(n('armhf'), 'linux/arm/v7');
  assert.equal(n('armel'), 'linux/arm/v6');
  assert.equal(n('arm'), 'linux/arm/v7');
  assert.equal(n('arm', '6'), 'linux/arm/v6');
  assert.equal(n('i386', 'whatever'), 'linux/386');
  assert.equal(n('AMD64', '', 'Linux'), 'linux/amd64');
  assert.equal(n('arm64', '', 'macos'), 'darwin/arm64');
  assert.equal(platforms.normalize({ os: '', architecture: 'amd64' }).os, hostOS);
  assert.equal(platforms.format({ os: '', architecture: 'amd64' }), 'unknown');
});

// containerd 1.6 compare_test.go TestOnly.
const onlyCases: Array<[string, string[], string[]]> = [
  ['linux/amd64', ['linux/amd64', 'linux/386'], ['linux/amd64/v2', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/amd64/v2', ['linux/amd64', 'linux/amd64/v1', 'linux/amd64/v2', 'linux/386'], ['linux/amd64/v3', 'linux/amd64/v4', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/386', ['linux/386'], ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['windows/amd64', ['windows/amd64'], ['linux/amd64', 'linux/arm/v7', 'linux/arm64', 'windows/arm']],
  ['linux/arm/v8', ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8'], ['linux/amd64', 'linux/arm/v4', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/arm/v7', ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7'], ['linux/amd64', 'linux/arm/v4', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/arm/v6', ['linux/arm/v5', 'linux/arm/v6'], ['linux/amd64', 'linux/arm', 'linux/arm/v4', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/arm/v5', ['linux/arm/v5'], ['linux/amd64', 'linux/arm', 'linux/arm/v4', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/arm/v4', ['linux/arm/v4'], ['linux/amd64', 'linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'windows/amd64', 'windows/arm']],
  ['linux/arm64', ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm/v8', 'linux/arm64', 'linux/arm64/v8'], ['linux/amd64', 'linux/arm/v4', 'linux/arm/v9', 'linux/arm64/v9', 'windows/amd64', 'windows/arm']],
];

for (const [spec, yes, no] of onlyCases) {
  test(`only(${spec})`, () => {
    const m = platforms.only(platforms.parse(spec));
    for (const s of yes) assert.equal(m.match(platforms.parse(s)), true, `${spec} should match ${s}`);
    for (const s of no) assert.equal(m.match(platforms.parse(s)), false, `${spec} should not match ${s}`);
  });
}

// containerd 1.6 compare_test.go TestOnlyStrict (subset).
const strictCases: Array<[string, string[], string[]]> = [
  ['linux/amd64', ['linux/amd64'], ['linux/386', 'linux/arm/v7', 'linux/arm64', 'windows/amd64']],
  ['linux/arm/v8', ['linux/arm/v8'], ['linux/arm', 'linux/arm/v5', 'linux/arm/v6', 'linux/arm/v7', 'linux/arm64']],
  ['linux/arm/v7', ['linux/arm', 'linux/arm/v7'], ['linux/arm/v5', 'linux/arm/v6', 'linux/arm/v8', 'linux/arm64']],
  ['linux/arm64', ['linux/arm64', 'linux/arm64/v8'], ['linux/arm', 'linux/arm/v8', 'linux/arm64/v9']],
];

for (const [spec, yes, no] of strictCases) {
  test(`onlyStrict(${spec})`, () => {
    const m = platforms.onlyStrict(platforms.parse(spec));
    for (const s of yes) assert.equal(m.match(platforms.parse(s)), true, `${spec} should match ${s}`);
    for (const s of no) assert.equal(m.match(platforms.parse(s)), false, `${spec} should not match ${s}`);
  });
}

test('only: less prefers the exact platform, then lower levels in order', () => {
  const m = platforms.only(platforms.parse('linux/amd64/v3'));
  const ps = ['linux/386', 'linux/amd64', 'linux/amd64/v3', 'linux/arm64', 'linux/amd64/v2'].map((s) => ({ platform: platforms.parse(s) }));
  const sorted = platforms.sortByPreference(ps, m).map((x) => platforms.format(x.platform));
  assert.deepEqual(sorted, ['linux/amd64/v3', 'linux/amd64/v2', 'linux/amd64', 'linux/386', 'linux/arm64']);

  const arm = platforms.only(platforms.parse('linux/arm64'));
  const armSorted = platforms.sortByPreference(['linux/arm/v6', 'linux/arm/v7', 'linux/arm64/v8', 'linux/amd64'].map((s) => ({ platform: platforms.parse(s) })), arm)
    .map((x) => platforms.format(x.platform));
  assert.deepEqual(armSorted, ['linux/arm64/v8', 'linux/arm/v7', 'linux/arm/v6', 'linux/amd64']);
});

test('sortByPreference keeps entries without a platform last and is stable', () => {
  const m = platforms.only(platforms.parse('linux/amd64'));
  const items = [{ id: 1 }, { id: 2, platform: platforms.parse('linux/arm64') }, { id: 3, platform: platforms.parse('linux/amd64') }, { id: 4 }, { id: 5, platform: platforms.parse('linux/s390x') }];
  assert.deepEqual(platforms.sortByPreference(items, m).map((x) => x.id), [3, 2, 5, 1, 4]);
});

test('ordered, any, all', () => {
  const p = (s: string) => platforms.parse(s);
  const o = platforms.ordered(p('linux/arm64'), p('linux/amd64'));
  assert.ok(o.match(p('linux/amd64')) && o.match(p('linux/aarch64')) && !o.match(p('linux/386')));
  assert.ok(o.less(p('linux/arm64'), p('linux/amd64')));
  assert.ok(!o.less(p('linux/amd64'), p('linux/arm64')));
  assert.ok(o.less(p('linux/amd64'), p('linux/386')));

  const a = platforms.any(p('linux/arm64'), p('linux/amd64'));
  assert.ok(a.match(p('linux/amd64')));
  assert.ok(!a.less(p('linux/arm64'), p('linux/amd64')) && !a.less(p('linux/amd64'), p('linux/arm64')));
  assert.ok(a.less(p('linux/amd64'), p('linux/s390x')));
  assert.ok(!a.less(p('linux/s390x'), p('linux/amd64')));

  assert.ok(platforms.all.match(p('windows/arm')));
  assert.ok(!platforms.all.less(p('linux/amd64'), p('linux/arm64')));
});

test('defaultPlatform reflects the host; defaultMatcher matches it', () => {
  const d = platforms.defaultPlatform();
  assert.equal(d.os, hostOS);
  assert.equal(d.architecture, hostArch);
  const expectedArch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', s390x: 's390x', riscv64: 'riscv64' };
  if (expectedArch[process.arch]) assert.equal(hostArch, expectedArch[process.arch]);
  if (process.platform === 'linux') assert.equal(hostOS, 'linux');
  if (hostArch !== 'arm' && hostArch !== 'arm64') assert.equal(d.variant, undefined);
  assert.ok(platforms.defaultMatcher().match(d));
  assert.equal(platforms.defaultString(), platforms.format(d));
  if (hostArch === 'amd64') assert.ok(platforms.defaultMatcher().match(platforms.parse('linux/386')));
});

test('cpuinfo variant mapping', () => {
  assert.equal(variantFromCpuinfo('processor\t: 0\nCPU architecture: 8\n', 'arm64'), 'v8');
  assert.equal(variantFromCpuinfo('CPU architecture: AArch64\n', 'arm64'), 'v8');
  assert.equal(variantFromCpuinfo('CPU architecture: 7\n', 'arm'), 'v7');
  assert.equal(variantFromCpuinfo('model name : ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n', 'arm'), 'v6');
  assert.equal(variantFromCpuinfo('CPU architecture: 5TEJ\n', 'arm'), 'v5');
  assert.equal(variantFromCpuinfo('CPU architecture: weird\n', 'arm'), 'unknown');
  assert.equal(variantFromCpuinfo('flags: sse\n', 'arm'), '');
});
