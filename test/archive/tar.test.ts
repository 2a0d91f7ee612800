/**
 * The tar reader: Go archive/tar semantics on hand-made archives (every
 * header form, split at every chunk size), errors, and GNU tar's own output
 * in gnu/posix/ustar/v7 formats (and its sparse formats) applied by us and
 * by containerd.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { isInvalidArgument } from '../../src/errdefs/index.js';
import { native } from '../../src/internal/sys.js';
import { parsePaxTime, TarReader, type TarHeader } from '../../src/archive/tar.js';
import { tempDir } from '../util/tmp.js';
import { check } from './harness.js';
import { entry, header, tar, type Entry } from './util.js';

interface Parsed {
  h: TarHeader;
  data: Buffer;
}

function parse(buf: Buffer, chunk = buf.length || 1): { entries: Parsed[]; done: boolean } {
  const r = new TarReader();
  const entries: Parsed[] = [];
  let cur: { h: TarHeader; parts: Buffer[] } | undefined;
  for (let i = 0; i < buf.length; i += chunk) {
    r.push(buf.subarray(i, i + chunk));
    for (let ev = r.next(); ev; ev = r.next()) {
      if (ev.kind === 'header') cur = { h: ev.header, parts: [] };
      else if (ev.kind === 'data') cur!.parts.push(ev.data);
      else {
        entries.push({ h: cur!.h, data: Buffer.concat(cur!.parts) });
        cur = undefined;
      }
    }
  }
  r.end();
  return { entries, done: r.done };
}

const T = 1_600_000_000;
const sampleEntries: Entry[] = [
  { name: 'dir/', type: 'dir', mode: 0o2755, uid: 1, gid: 2, mtime: T },
  { name: 'dir/file', data: 'hello world', mode: 0o4711, uid: 1000, gid: 1000, mtime: T + 1 },
  { name: 'long/' + 'n'.repeat(200), data: 'pax', mtime: T + 0.5 },
  { name: 'gnu/' + 'g'.repeat(300), data: 'gnu', gnu: true, mtime: T },
  { name: 'sym', type: 'symlink', linkname: 'l'.repeat(150), mtime: T },
  { name: 'gsym', type: 'symlink', linkname: 'k'.repeat(150), gnu: true, mtime: T },
  { name: 'hard', type: 'link', linkname: 'dir/file', mtime: T },
  { name: 'null', type: 'char', devmajor: 1, devminor: 3, mtime: T },
  { name: 'blk', type: 'block', devmajor: 259, devminor: 7, mtime: T },
  { name: 'fifo', type: 'fifo', mtime: T },
  { name: 'x', data: Buffer.alloc(1025, 7), xattrs: { 'user.a': 'b', 'security.capability': Buffer.from([1, 0, 0, 2]) }, mtime: T },
  { name: 'ids', data: '', uid: 0o7777777 + 10, gid: 3, base256: true, mtime: T },
  { name: 'times', data: 't', mtime: -3.25, atime: T + 9.5 },
  { name: 'utf8/ñame', data: 'ü', mtime: T },
];

test('headers and data through every chunk size', () => {
  const b = tar(sampleEntries);
  const ref = parse(b);
  assert.equal(ref.entries.length, sampleEntries.length);
  assert.ok(ref.done);
  const byName = new Map(ref.entries.map((e) => [e.h.name, e]));
  const f = byName.get('dir/file')!;
  assert.equal(f.h.type, '0');
  assert.equal(f.h.mode, 0o4711);
  assert.equal(f.h.uid, 1000);
  assert.equal(f.data.toString(), 'hello world');
  assert.deepEqual(f.h.mtime, { sec: T + 1, nsec: 0 });
  assert.equal(byName.get('dir/')!.h.type, '5');
  assert.equal(byName.get('dir/')!.h.mode, 0o2755);
  assert.deepEqual(byName.get('long/' + 'n'.repeat(200))!.h.mtime, { sec: T, nsec: 500_000_000 });
  assert.equal(byName.get('gnu/' + 'g'.repeat(300))!.data.toString(), 'gnu');
  assert.equal(byName.get('sym')!.h.linkname, 'l'.repeat(150));
  assert.equal(byName.get('gsym')!.h.linkname, 'k'.repeat(150));
  assert.equal(byName.get('hard')!.h.type, '1');
  assert.deepEqual([byName.get('blk')!.h.devmajor, byName.get('blk')!.h.devminor], [259, 7]);
  const x = byName.get('x')!;
  assert.equal(x.data.length, 1025);
  assert.deepEqual(x.h.xattrs, [
    ['user.a', Buffer.from('b')],
    ['security.capability', Buffer.from([1, 0, 0, 2])],
  ]);
  assert.equal(byName.get('ids')!.h.uid, 0o7777777 + 10);
  const t = byName.get('times')!.h;
  assert.deepEqual(t.mtime, { sec: -4, nsec: 750_000_000 });
  assert.deepEqual(t.atime, { sec: T + 9, nsec: 500_000_000 });
  // names are byte strings: UTF-8 bytes one char each
  assert.ok(byName.has(Buffer.from('utf8/ñame').toString('latin1')));
  for (const chunk of [1, 7, 100, 511, 512, 513, 1500, 4096]) {
    const got = parse(b, chunk);
    assert.deepEqual(
      got.entries.map((e) => [e.h, e.data]),
      ref.entries.map((e) => [e.h, e.data]),
      `chunk ${chunk}`,
    );
  }
});

test('Go semantics: header-only types carry no data; "\\0" type by trailing slash; PAX size, last x header, g ignored', () => {
  const parts = [
    // a symlink whose size field says 600: Go reads no data for it
    header({ name: 'sym', type: '2', size: 600, linkname: 'target' }),
    header({ name: 'olddir/', type: '\0', size: 0 }),
    header({ name: 'oldfile', type: '\0', size: 0 }),
    entry({ name: 'PaxHeaders/g', type: 'g', data: '17 comment=hello\n' }),
    entry({ name: 'PaxHeaders/x1', type: 'x', data: '13 path=lost\n' }),
    entry({ name: 'PaxHeaders/x2', type: 'x', data: '15 path=winner\n' }),
    header({ name: 'ignored-name', type: '0', size: 0 }),
  ];
  const { entries } = parse(Buffer.concat([...parts, Buffer.alloc(1024)]));
  assert.deepEqual(
    entries.map((e) => [e.h.name, e.h.type, e.data.length]),
    [
      ['sym', '2', 0],
      ['olddir/', '5', 0],
      ['oldfile', '0', 0],
      ['winner', '0', 0],
    ],
  );
  // PAX size overrides the header's
  const paxSize = Buffer.concat([entry({ name: 'x', type: 'x', data: '10 size=5\n' }), header({ name: 'f', type: '0', size: 0 }), Buffer.from('abcde'), Buffer.alloc(507 + 1024)]);
  assert.equal(parse(paxSize).entries[0]!.data.toString(), 'abcde');
});

test('signed checksums are accepted (old tars summed signed bytes)', () => {
  const h = header({ name: 'h\u00e9', type: '0', size: 0 });
  // recompute as a signed sum
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c >= 0x80 ? c - 256 : c;
  h.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
  h[154] = 0;
  h[155] = 0x20;
  assert.equal(Buffer.from(parse(Buffer.concat([h, Buffer.alloc(1024)])).entries[0]!.h.name, 'latin1').toString('utf8'), 'hé');
});

test('numeric fields as Go parses them: padding trimmed, digits up to a NUL, then anything; non-octal is an error', () => {
  const withMode = (field: string) => {
    const h = header({ name: 'm', type: '0', size: 0 });
    h.write(field.padEnd(8, '\0'), 100, 8, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const c of h) sum += c;
    h.write(sum.toString(8).padStart(6, '0'), 148, 'latin1');
    h[154] = 0;
    h[155] = 0x20;
    return Buffer.concat([h, Buffer.alloc(1024)]);
  };
  const mode = (field: string) => parse(withMode(field)).entries[0]!.h.mode;
  assert.equal(mode('0000644\0'), 0o644);
  assert.equal(mode('  644 \0'), 0o644);
  assert.equal(mode('\0\0 755'), 0o755);
  assert.equal(mode('644\x009z'), 0o644, 'what follows the first NUL is not parsed');
  assert.equal(mode('\0\0\0\0'), 0);
  assert.throws(() => parse(withMode('0000648\0')), /not octal/);
  assert.throws(() => parse(withMode('64 4\0')), /not octal/);
});

test('errors: checksum, bad PAX, oversize long name, zero block then data, truncation', () => {
  const bad = header({ name: 'a', type: '0', size: 0 });
  bad[0] = 0x62;
  assert.throws(() => parse(bad), (e) => isInvalidArgument(e) && /checksum/.test((e as Error).message));
  assert.throws(() => parse(header({ name: 'sparse', type: 'S', size: 0 })), /not in GNU format/);
  assert.throws(() => parse(entry({ name: 'x', type: 'x', data: '99 path=x\n' })), /PAX/);
  assert.throws(() => parse(entry({ name: 'x', type: 'x', data: '9 pathx\n' })), /PAX/);
  assert.throws(() => parse(header({ name: 'L', type: 'L', size: 2 << 20 })), /larger than/);
  assert.throws(() => parse(Buffer.concat([Buffer.alloc(512), header({ name: 'a', type: '0', size: 0 })])), /zero block/);
  const full = tar([{ name: 'f', data: 'x'.repeat(1000) }]);
  assert.throws(() => parse(full.subarray(0, 600)), /unexpected EOF/);
  assert.throws(() => parse(full.subarray(0, 100)), /unexpected EOF/);
  // ending at a header boundary (no end marker), or after one zero block, is fine
  assert.equal(parse(full.subarray(0, 1536)).entries.length, 1);
  assert.equal(parse(full.subarray(0, 2048)).entries.length, 1);
  // the end marker stops parsing: anything after it is not read as entries
  const withJunk = Buffer.concat([full, header({ name: 'after', type: '0', size: 0 })]);
  assert.equal(parse(withJunk).entries.length, 1);
});

test('parsePaxTime', () => {
  assert.deepEqual(parsePaxTime('1350244992.023960108'), { sec: 1350244992, nsec: 23960108 });
  assert.deepEqual(parsePaxTime('1350244992.3'), { sec: 1350244992, nsec: 300000000 });
  assert.deepEqual(parsePaxTime('1350244992.0239601089999'), { sec: 1350244992, nsec: 23960108 });
  assert.deepEqual(parsePaxTime('-1.000000001'), { sec: -2, nsec: 999999999 });
  assert.deepEqual(parsePaxTime('0'), { sec: 0, nsec: 0 });
  assert.throws(() => parsePaxTime('1.2.3'));
  assert.throws(() => parsePaxTime('abc'));
});

// ---- GNU tar's output, applied by us and by containerd ----------------------------

let tmp: { dir: string; cleanup: () => Promise<void> };
before(async () => {
  tmp = await tempDir('dist-archive-tar-');
});
after(async () => {
  await tmp.cleanup();
});

test('GNU tar archives in gnu, posix, ustar and v7 formats apply like containerd', async () => {
  const src = join(tmp.dir, 'src');
  const long = 'd'.repeat(120);
  await fsp.mkdir(join(src, 'tree', long, 'sub'), { recursive: true });
  await fsp.writeFile(join(src, 'tree', long, 'sub', 'f'.repeat(140)), 'deep');
  await fsp.writeFile(join(src, 'tree', 'file'), 'content\n'.repeat(1000));
  await fsp.chmod(join(src, 'tree', 'file'), 0o4755);
  await fsp.chown(join(src, 'tree', 'file'), 1234, 5678);
  await fsp.symlink('file', join(src, 'tree', 'sym'));
  await fsp.symlink('/' + 't'.repeat(110), join(src, 'tree', 'longsym'));
  await fsp.link(join(src, 'tree', 'file'), join(src, 'tree', 'hard'));
  execFileSync('mkfifo', [join(src, 'tree', 'fifo')]);
  await fsp.mkdir(join(src, 'tree', 'sticky'), { mode: 0o1777 });
  await fsp.chmod(join(src, 'tree', 'sticky'), 0o1777);
  if (native) native.lsetxattr(join(src, 'tree', 'file'), 'user.origin', Buffer.from('gnu-tar'));
  const fixed = new Date('2021-06-01T12:00:00.123456789Z');
  execFileSync('find', [join(src, 'tree'), '-exec', 'touch', '-h', '-d', fixed.toISOString(), '{}', '+']);
  for (const format of ['gnu', 'posix', 'ustar', 'v7']) {
    const args = ['-C', src, '-c', `--format=${format}`];
    if (format === 'posix') args.push('--xattrs', '--xattrs-include=user.*');
    // ustar and v7 cannot hold the long names (nor v7 a fifo)
    if (format === 'ustar' || format === 'v7') args.push(`--exclude=tree/${long}`, '--exclude=tree/longsym');
    if (format === 'v7') args.push('--exclude=tree/fifo');
    args.push('tree');
    const bytes = execFileSync('tar', args, { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
    await check(join(tmp.dir, format), { layers: () => [bytes] });
  }
});

/** Sparse source files: data fragments between holes, one ending in a hole, one with > 4 + 21 fragments. */
async function sparseTree(dir: string): Promise<Map<string, Buffer>> {
  await fsp.mkdir(dir, { recursive: true });
  const files = new Map<string, Buffer>();
  const make = async (name: string, size: number, parts: Array<[number, Buffer]>) => {
    const h = await fsp.open(join(dir, name), 'w');
    await h.truncate(size);
    for (const [off, b] of parts) await h.write(b, 0, b.length, off);
    await h.close();
    files.set(name, await fsp.readFile(join(dir, name)));
  };
  await make('frags', 3 * 1024 * 1024 + 100, [[4096, Buffer.alloc(5000, 0x41)], [1 << 20, Buffer.alloc(70_000, 0x42)], [3 << 20, Buffer.alloc(50, 0x43)]]);
  await make('tailhole', 2 << 20, [[0, Buffer.from('head')]]);
  await make('many', 64 * 8192, Array.from({ length: 32 }, (_, i) => [i * 2 * 8192, Buffer.alloc(100, i + 1)] as [number, Buffer]));
  await make('allhole', 1 << 20, []);
  return files;
}

test('GNU sparse files: old GNU, PAX 0.0, 0.1 and 1.0 read as their logical content; applied like containerd', async () => {
  const src = join(tmp.dir, 'sparse-src');
  const files = await sparseTree(src);
  for (const format of ['gnu', 'posix:0.0', 'posix:0.1', 'posix:1.0']) {
    const [fmt, version] = format.split(':');
    const args = ['-C', src, '-c', '--sparse', `--format=${fmt}`, ...(version ? [`--sparse-version=${version}`] : []), ...files.keys()];
    const bytes = execFileSync('tar', args, { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'pipe'] });
    assert.ok(bytes.length < 1 << 20, `${format}: GNU tar stored the holes (${bytes.length} bytes)`);
    for (const chunk of [bytes.length, 4096, 777]) {
      const { entries } = parse(bytes, chunk);
      assert.deepEqual(entries.map((e) => e.h.name), [...files.keys()], format);
      for (const e of entries) {
        assert.equal(e.h.type, fmt === 'gnu' ? 'S' : '0', `${format} ${e.h.name}`);
        assert.equal(e.h.size, files.get(e.h.name)!.length, `${format} ${e.h.name}`);
        assert.ok(e.data.equals(files.get(e.h.name)!), `${format} ${e.h.name}: content`);
      }
    }
    // containerd copies the logical content into a regular file; it refuses the old GNU type 'S'
    await check(join(tmp.dir, `sparse-${format.replace(':', '-')}`), {
      layers: () => [bytes],
      ...(fmt === 'gnu' ? { fails: /unhandled tar header type 83/ } : {}),
    });
  }
});

test('GNU sparse maps that do not fit the entry are errors', () => {
  const pax = (recs: Record<string, string>) =>
    Object.entries(recs)
      .map(([k, v]) => {
        const body = ` ${k}=${v}\n`;
        let n = body.length + 1;
        while (String(n).length + body.length !== n) n++;
        return `${n}${body}`;
      })
      .join('');
  const sparse = (recs: Record<string, string>, data: string) =>
    Buffer.concat([entry({ name: 'x', type: 'x', data: pax({ 'GNU.sparse.major': '0', 'GNU.sparse.minor': '1', 'GNU.sparse.name': 'f', ...recs }) }), entry({ name: 'GNUSparseFile/f', data }), Buffer.alloc(1024)]);
  const ok = parse(sparse({ 'GNU.sparse.size': '10', 'GNU.sparse.numblocks': '2', 'GNU.sparse.map': '1,2,6,3' }, 'abcde'));
  assert.equal(ok.entries[0]!.h.name, 'f');
  assert.deepEqual([...ok.entries[0]!.data], [0, 0x61, 0x62, 0, 0, 0, 0x63, 0x64, 0x65, 0]);
  const bad = [
    [{ 'GNU.sparse.size': '4', 'GNU.sparse.numblocks': '1', 'GNU.sparse.map': '2,3' }, 'abc', /sparse map/], // beyond the size
    [{ 'GNU.sparse.size': '10', 'GNU.sparse.numblocks': '2', 'GNU.sparse.map': '5,2,1,2' }, 'abcd', /sparse map/], // out of order
    [{ 'GNU.sparse.size': '10', 'GNU.sparse.numblocks': '2', 'GNU.sparse.map': '1,2' }, 'ab', /sparse map/], // count mismatch
    [{ 'GNU.sparse.size': '10', 'GNU.sparse.numblocks': '1', 'GNU.sparse.map': '1,2' }, 'abc', /unreferenced data/],
    [{ 'GNU.sparse.size': '10', 'GNU.sparse.numblocks': '1', 'GNU.sparse.map': '1,4' }, 'abc', /non-existent data/],
  ] as const;
  for (const [recs, data, re] of bad) assert.throws(() => parse(sparse(recs, data)), (e) => isInvalidArgument(e) && re.test((e as Error).message), JSON.stringify(recs));
  // 0.0: offset/numbytes records must alternate, offset first
  assert.throws(() => parse(entry({ name: 'x', type: 'x', data: pax({ 'GNU.sparse.numbytes': '1' }) })), /sparse 0.0/);
});
