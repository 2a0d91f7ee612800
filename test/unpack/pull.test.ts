/**
 * `dist pull` end to end against a real docker-registry (no rig): images
 * built here (gzip, zstd and uncompressed layers; OCI and Docker manifests;
 * a two-platform index) are pushed, pulled into a fresh embedded root with
 * each snapshotter, and the unpacked tree is checked through the snapshot
 * (a view), against `dist rootfs`, and across snapshotters. Also: the labels
 * containerd sets, `images check`, a re-pull that does no work, and a diffID
 * mismatch that fails cleanly.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pullImage } from '../../src/client/pull.js';
import { exportRootfs } from '../../src/client/rootfs.js';
import { platformMatcher } from '../../src/client/fetch.js';
import { isFailedPrecondition, isNotFound } from '../../src/errdefs/index.js';
import { chainID, chainIDs } from '../../src/images/chainid.js';
import type { Ctx } from '../../src/internal/context.js';
import { withTempMount } from '../../src/mount/index.js';
import type { DockerResolver } from '../../src/remotes/docker/index.js';
import type { Fetcher, Resolver } from '../../src/remotes/types.js';
import { openEmbedded, type Embedded } from '../../src/services/embedded.js';
import type { Info } from '../../src/snapshots/types.js';
import { makeIndex, pushBlobs, type Image } from '../util/oci.js';
import { registryAvailable, startRegistry, testResolver, type Registry } from '../util/registry.js';
import { tempDir } from '../util/tmp.js';
import { byPath, dir, dist, file, imageOf, layerOf, oracle, trickyLayers, whiteout, withoutDirMtimes } from './fixtures.js';

const skip = (!registryAvailable() && 'docker-registry not installed') || (process.getuid?.() !== 0 && 'needs root (devices, owners, mounts)');
const SNAPSHOTTERS = ['overlayfs', 'native'] as const;
const ctx: Ctx = { namespace: 'default' };
/** Oracle option: mtimes from now on (set while unpacking, not from the archive) print as `new`. */
const SINCE = ['--since', String(BigInt(Date.now() - 2000) * 1_000_000n)];

let reg: Registry;
let resolver: DockerResolver;
let tricky: Image;
let trickyDocker: Image;
let plat: { amd64: Image; arm64: Image };
let bad: Image;
let bad0: Image;
const cleanups: Array<() => Promise<void>> = [];

before(async () => {
  if (skip) return;
  reg = await startRegistry();
  resolver = testResolver();
  const push = async (repo: string, blobs: Image['blobs']) => pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/${repo}`), blobs);

  tricky = imageOf(await trickyLayers());
  await push('tricky:oci', tricky.blobs);
  trickyDocker = imageOf(await trickyLayers({ docker: true }), { format: 'docker' });
  await push('tricky:docker', trickyDocker.blobs);

  const base = await layerOf([dir('etc'), file('etc/os', 'common\n'), file('bin/sh', 'sh\n', { mode: 0o755 })], 'gzip');
  const mk = async (arch: string, variant?: string) =>
    imageOf([base, await layerOf([file('etc/platform', `linux/${arch}\n`), whiteout('etc/os')], 'zstd')], { platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) } });
  plat = { amd64: await mk('amd64'), arm64: await mk('arm64', 'v8') };
  const idx = makeIndex([plat.amd64, plat.arm64]);
  await push('multi:v1', idx.blobs);

  const good = await layerOf([file('ok.txt', 'ok\n')], 'gzip');
  const second = await layerOf([file('second.txt', 'second\n')], 'gzip');
  bad = imageOf([good, second], { diffIDs: [good.diffID, 'sha256:' + '0'.repeat(64)] });
  await push('bad:v1', bad.blobs);
  // the first layer wrong: that one unpacks while it downloads (incompressible,
  // so the download is likely still running when the unpacker claims it)
  const big = await layerOf([file('big.bin', randomBytes(12 << 20)), file('ok.txt', 'ok\n')], 'gzip');
  bad0 = imageOf([big, second], { diffIDs: ['sha256:' + '1'.repeat(64), second.diffID] });
  await push('bad0:v1', bad0.blobs);
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  await resolver?.close();
  await reg?.stop();
});

async function freshRoot(): Promise<{ root: string; svc: Embedded }> {
  const t = await tempDir('dist-unpack-');
  cleanups.push(t.cleanup);
  const root = join(t.dir, 'root');
  return { root, svc: await openEmbedded(root) };
}

/** A resolver that counts blob fetches (digest → count). */
function counting(r: Resolver): { resolver: Resolver; fetched: Map<string, number> } {
  const fetched = new Map<string, number>();
  return {
    fetched,
    resolver: {
      resolve: (c, ref) => r.resolve(c, ref),
      pusher: (c, ref) => r.pusher(c, ref),
      fetcher: async (c, ref): Promise<Fetcher> => {
        const f = await r.fetcher(c, ref);
        return {
          fetch: (c2, desc, o) => {
            fetched.set(desc.digest, (fetched.get(desc.digest) ?? 0) + 1);
            return f.fetch(c2, desc, o);
          },
        };
      },
    },
  };
}

/** Oracle output of the committed snapshot `chain`, read through a view. */
async function snapshotOracle(svc: Embedded, sn: string, chain: string, ...args: string[]): Promise<string> {
  const s = await svc.snapshotter(sn);
  const key = `oracle-view-${Math.random().toString(36).slice(2)}`;
  const mounts = await s.view(ctx, key, chain);
  try {
    // a single bind mount: read its source directly ("via the snapshot dir")
    if (mounts.length === 1 && mounts[0].type === 'bind') return await oracle(mounts[0].source, ...args);
    return await withTempMount(mounts, (d) => oracle(d, ...args));
  } finally {
    await s.remove(ctx, key);
  }
}

async function snapshots(svc: Embedded, sn: string): Promise<Info[]> {
  const out: Info[] = [];
  await (await svc.snapshotter(sn)).walk(ctx, (i) => void out.push(i));
  return out;
}

/**
 * Where overlayfs and a plain directory differ for the tricky image: layer 3
 * writes linkdir/f2 below layer 2's symlink linkdir -> realdir. A plain
 * directory (native, rootfs) follows the symlink; an overlay upperdir, as in
 * containerd 1.6, resolves names in the upper alone and makes linkdir a
 * directory.
 */
const SYMLINK_EDGE = new Set(['linkdir', 'linkdir/f2', 'realdir/f2']);

function withoutSymlinkEdge(out: string): string {
  return out
    .split('\n')
    .filter((l) => !SYMLINK_EDGE.has(l.split('\t')[0]))
    .join('\n');
}

/** The facts every unpack of the tricky image must show; overlay: as containerd's overlayfs unpacks it. */
function checkTricky(out: string, overlay = false): void {
  const t = byPath(out);
  const has = (p: string, ...parts: string[]) => {
    const l = t.get(p);
    assert.ok(l, `${p} missing`);
    for (const part of parts) assert.ok(l.split('\t').includes(part), `${p}: expected ${part} in ${l}`);
  };
  const gone = (p: string) => assert.ok(!t.has(p), `${p} should be gone: ${t.get(p)}`);
  // whiteouts and opaque dirs
  gone('gone.txt');
  gone('gonedir');
  gone('gonedir/a');
  gone('usr/share/doc/readme');
  has('usr/share/doc', 'dir');
  has('opaque', 'dir');
  has('opaque/new', 'file');
  gone('opaque/old1');
  gone('opaque/sub');
  for (const p of t.keys()) assert.ok(!p.split('/').some((c) => c.startsWith('.wh.')), `whiteout file left: ${p}`);
  // hard links (same layer, twice) and symlinks
  const hl = t.get('bin/tool')!;
  has('bin/tool-hl', 'nlink=2', 'group=bin/tool');
  assert.ok(hl.includes('nlink=2'));
  has('etc/added-hl', 'nlink=2', 'group=etc/added');
  if (overlay) {
    has('linkdir', 'dir'); // the upper's own directory hides the lower symlink
    has('linkdir/f2', 'file');
    gone('realdir/f2');
  } else {
    has('linkdir', 'symlink', 'target=realdir');
    has('realdir/f2', 'file'); // written through the symlinked dir
    gone('linkdir/f2');
  }
  has('abslink', 'symlink', 'target=/etc/motd');
  has('dangling', 'symlink', 'target=/no/such/target');
  // modes, owners, special files, xattrs, times
  has('bin/su', 'mode=4711', 'size=9');
  has('bin/wall', 'mode=2755', 'gid=5');
  has('bin/ping', 'xattrs=security.capability=0100000200040000000000000000000000000000');
  has('etc/user-xattr', 'xattrs=user.empty=;user.note=68656c6c6f');
  has('tmp', 'dir', 'mode=1777');
  has('root', 'dir', 'mode=0700');
  has('etc/owned', 'uid=2000', 'gid=2000', 'size=10');
  has('dev/null', 'char', 'dev=1,3', 'mode=0666');
  has('dev/tty0', 'char', 'dev=4,0', 'mode=0620', 'gid=5');
  has('dev/loop9', 'block', 'dev=7,9', 'mode=0660', 'gid=6');
  has('run-fifo', 'fifo', 'mode=0600');
  has('etc/nsmtime', 'mtime=1700000000123456789');
  has('etc/motd', 'size=7', 'mtime=1700000000000000000');
  has('etc', 'dir', 'mtime=1700000010000000000');
  // replacements and implicit parents
  has('replace-dir', 'file');
  gone('replace-dir/x');
  has('replace-file', 'dir');
  has('replace-file/inside', 'file');
  has('to-symlink', 'symlink', 'target=etc/motd');
  has('implicit', 'dir', 'mode=0755');
  has('newdir/deeper/file', 'file');
  has(`deep/${'d'.repeat(60)}/${'f'.repeat(80)}.txt`, 'file');
  has('unicod\\xc3\\xa9-\\xc3\\xb1ame.txt', 'file');
}

for (const sn of SNAPSHOTTERS) {
  test(`pull: OCI image with gzip, zstd and uncompressed layers, tricky entries (${sn})`, { skip }, async () => {
    const { root, svc } = await freshRoot();
    const ref = `${reg.host}/tricky:oci`;
    const c1 = counting(resolver);
    let r;
    try {
      r = await pullImage(svc, ctx, ref, { resolver: c1.resolver, snapshotter: sn });
      const chain = chainIDs(tricky.layers.map((l) => l.diffID));
      assert.equal(r.image.target.digest, tricky.manifest.desc.digest);
      assert.deepEqual(r.unpack, { chainID: chain[2], applied: 3, layers: 3 });
      for (const b of tricky.blobs) assert.equal(c1.fetched.get(b.desc.digest), 1, `fetched once: ${b.desc.mediaType}`);

      // labels, as containerd sets them
      for (const l of tricky.layers) assert.equal((await svc.content.info(ctx, l.desc.digest)).labels['containerd.io/uncompressed'], l.diffID);
      assert.equal((await svc.content.info(ctx, tricky.config.desc.digest)).labels[`containerd.io/gc.ref.snapshot.${sn}`], chain[2]);

      // one committed snapshot per chain ID, parent = previous chain ID; nothing active left
      const infos = await snapshots(svc, sn);
      assert.deepEqual(infos.map((i) => [i.name, i.parent ?? '', i.kind]).sort(), chain.map((c, i) => [c, i ? chain[i - 1] : '', 'committed']).sort());

      const viaSnapshot = await snapshotOracle(svc, sn, chain[2], ...SINCE);
      checkTricky(viaSnapshot, sn === 'overlayfs');

      // dist rootfs (plain directory): the same tree; directory mtimes may
      // differ only where overlayfs made an implicit parent in an upper layer
      const t = await tempDir('dist-rootfs-');
      cleanups.push(t.cleanup);
      await exportRootfs(svc, ctx, r.image.target, join(t.dir, 'rootfs'), { platform: platformMatcher({}) });
      const viaRootfs = await oracle(join(t.dir, 'rootfs'), ...SINCE);
      checkTricky(viaRootfs);
      assert.equal(withoutSymlinkEdge(withoutDirMtimes(viaRootfs)), withoutSymlinkEdge(withoutDirMtimes(viaSnapshot)));
      if (sn === 'native') assert.equal(withoutDirMtimes(viaRootfs), withoutDirMtimes(viaSnapshot));

      // re-pull: no blob downloaded, no layer applied, the same snapshots
      const c2 = counting(resolver);
      let applies = 0;
      const spied = new Proxy(svc, {
        get(target, p, recv) {
          if (p === 'diff') return { apply: (...a: Parameters<Embedded['diff']['apply']>) => (applies++, target.diff.apply(...a)) };
          return Reflect.get(target, p, recv);
        },
      });
      const r2 = await pullImage(spied, ctx, ref, { resolver: c2.resolver, snapshotter: sn });
      assert.deepEqual(r2.unpack, { chainID: chain[2], applied: 0, layers: 3 });
      assert.equal(applies, 0);
      assert.deepEqual([...c2.fetched.keys()], []);
      assert.deepEqual((await snapshots(svc, sn)).map((i) => i.name).sort(), [...chain].sort());
    } finally {
      await svc.close();
    }

    // the CLI sees it unpacked (images check) and can mount it
    const chk = await dist(['--root', root, '--json', 'images', 'check', '--snapshotter', sn]);
    assert.equal(chk.code, 0, chk.stderr);
    const rows = JSON.parse(chk.stdout) as Array<{ name: string; unpacked: boolean; ready: boolean }>;
    assert.deepEqual(rows.map((x) => [x.name, x.unpacked, x.ready]), [[ref, true, true]]);
    const other = SNAPSHOTTERS.find((s) => s !== sn)!;
    const chk2 = await dist(['--root', root, '--json', 'images', 'check', '--snapshotter', other]);
    assert.equal(JSON.parse(chk2.stdout)[0].unpacked, false);
  });
}

/**
 * A resolver whose fetcher holds the download of `digest` after `after`
 * bytes until `release()` resolves (or `ms` pass: then it answers false).
 */
function holding(r: Resolver, digest: string, after: number, release: () => Promise<boolean>): { resolver: Resolver; released: Promise<boolean> } {
  let done: (v: boolean) => void = () => undefined;
  const released = new Promise<boolean>((res) => (done = res));
  return {
    released,
    resolver: {
      resolve: (c, ref) => r.resolve(c, ref),
      pusher: (c, ref) => r.pusher(c, ref),
      fetcher: async (c, ref): Promise<Fetcher> => {
        const f = await r.fetcher(c, ref);
        return {
          fetch: async (c2, desc, o) => {
            const body = await f.fetch(c2, desc, o);
            if (desc.digest !== digest) return body;
            async function* held() {
              let n = 0;
              let waited = false;
              for await (const chunk of body as AsyncIterable<Buffer>) {
                if (!waited && n + chunk.length > after) {
                  yield chunk.subarray(0, after - n);
                  waited = true;
                  done(await release());
                  yield chunk.subarray(after - n);
                } else yield chunk;
                n += chunk.length;
              }
            }
            return Readable.from(held(), { objectMode: false });
          },
        };
      },
    },
  };
}

/** Polls until some file under dir is named `name` (true), or ms pass (false). */
async function appears(dir: string, name: string, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const found = (await readdir(dir, { recursive: true }).catch(() => [] as string[])).some((p) => p.endsWith(`/fs/${name}`) || p.endsWith(`/${name}`));
    if (found) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

for (const sn of SNAPSHOTTERS) {
  test(`pull: the first layer unpacks while it downloads (${sn})`, { skip }, async () => {
    // small files first (more than one executor batch), then incompressible
    // data: the download is held in that data until the small files are on disk
    const smalls = Array.from({ length: 80 }, (_, i) => file(`early/f${String(i).padStart(3, '0')}`, `${i}\n`));
    const l0 = await layerOf([...smalls, file('late.bin', randomBytes(6 << 20))], 'gzip');
    const l1 = await layerOf([file('top.txt', 'top\n')], 'gzip');
    const img = imageOf([l0, l1]);
    await pushBlobs(ctx, await resolver.pusher(ctx, `${reg.host}/live:v1`), img.blobs);
    const { root, svc } = await freshRoot();
    try {
      const h = holding(resolver, l0.desc.digest, 3 << 20, () => appears(root, 'early/f079', 10_000));
      const r = await pullImage(svc, ctx, `${reg.host}/live:v1`, { resolver: h.resolver, snapshotter: sn });
      assert.equal(await h.released, true, 'files of the first layer were on disk while its download was held');
      const chain = chainIDs([l0.diffID, l1.diffID]);
      assert.deepEqual(r.unpack, { chainID: chain[1], applied: 2, layers: 2 });
      const tree = await snapshotOracle(svc, sn, chain[1]);
      assert.match(tree, /^late\.bin\tfile\t.*size=6291456\t/m);
      assert.match(tree, /^top\.txt\tfile\t/m);
      assert.deepEqual((await snapshots(svc, sn)).map((i) => [i.name, i.kind]).sort(), chain.map((c) => [c, 'committed']).sort());
    } finally {
      await svc.close();
    }
  });
}

test('pull: Docker schema2 manifest (gzip + uncompressed layers), both snapshotters agree but on the lower-symlink edge', { skip }, async () => {
  const { svc } = await freshRoot();
  try {
    const outs: string[] = [];
    for (const sn of SNAPSHOTTERS) {
      const r = await pullImage(svc, ctx, `${reg.host}/tricky:docker`, { resolver, snapshotter: sn });
      assert.equal(r.image.target.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
      assert.equal(r.unpack?.applied, 3);
      const chain = chainID(trickyDocker.layers.map((l) => l.diffID));
      assert.equal(r.unpack?.chainID, chain);
      const out = await snapshotOracle(svc, sn, chain);
      checkTricky(out, sn === 'overlayfs');
      outs.push(out);
    }
    // overlayfs and native differ at most in directory mtimes (implicit parents
    // in upper layers) and where a lower symlink was written below
    assert.equal(withoutSymlinkEdge(withoutDirMtimes(outs[0])), withoutSymlinkEdge(withoutDirMtimes(outs[1])));
  } finally {
    await svc.close();
  }
});

test('pull: an index with two platforms unpacks the one asked for (--platform)', { skip }, async () => {
  const { svc } = await freshRoot();
  try {
    const ref = `${reg.host}/multi:v1`;
    const c = counting(resolver);
    const r = await pullImage(svc, ctx, ref, { resolver: c.resolver, snapshotter: 'overlayfs', platforms: ['linux/arm64/v8'] });
    const want = chainID(plat.arm64.layers.map((l) => l.diffID));
    assert.equal(r.unpack?.chainID, want);
    assert.equal(r.image.target.mediaType, 'application/vnd.oci.image.index.v1+json');
    // the amd64 manifest and its own layer were not fetched
    assert.equal(c.fetched.get(plat.amd64.manifest.desc.digest), undefined);
    assert.equal(c.fetched.get(plat.amd64.layers[1].desc.digest), undefined);
    await assert.rejects(svc.content.info(ctx, plat.amd64.layers[1].desc.digest), (e) => isNotFound(e));
    assert.equal((await svc.content.info(ctx, plat.arm64.config.desc.digest)).labels['containerd.io/gc.ref.snapshot.overlayfs'], want);
    const t = byPath(await snapshotOracle(svc, 'overlayfs', want));
    assert.ok(t.get('etc/platform')?.includes(`size=${'linux/arm64\n'.length}`));
    assert.ok(!t.has('etc/os'));
    assert.ok(t.has('bin/sh'));
    // then amd64: the shared base layer is not applied again
    const r2 = await pullImage(svc, ctx, ref, { resolver, snapshotter: 'overlayfs', platforms: ['linux/amd64'] });
    assert.deepEqual(r2.unpack, { chainID: chainID(plat.amd64.layers.map((l) => l.diffID)), applied: 1, layers: 2 });
  } finally {
    await svc.close();
  }
});

for (const sn of SNAPSHOTTERS) {
  for (const which of ['second', 'first'] as const) {
    test(`pull: a diffID mismatch in the ${which} layer fails the unpack cleanly, nothing committed for it (${sn})`, { skip }, async () => {
      const { svc } = await freshRoot();
      const img = which === 'first' ? bad0 : bad;
      try {
        await assert.rejects(
          pullImage(svc, ctx, `${reg.host}/${which === 'first' ? 'bad0' : 'bad'}:v1`, { resolver, snapshotter: sn }),
          (e: Error) => isFailedPrecondition(e) && /diff id|diffid/i.test(e.message),
        );
        const infos = await snapshots(svc, sn);
        // a correct first layer may stay committed, as containerd leaves it; nothing else
        const allowed = which === 'first' ? [] : [img.layers[0].diffID];
        assert.ok(infos.every((i) => i.kind === 'committed' && allowed.includes(i.name)), JSON.stringify(infos.map((i) => [i.name, i.kind])));
        assert.equal((await svc.content.info(ctx, img.config.desc.digest)).labels[`containerd.io/gc.ref.snapshot.${sn}`], undefined);
        // the snapshotter's own tree holds no leftover active dirs
        const dirs = await readdir(join(svc.root, 'snapshots', sn, 'snapshots'));
        assert.ok(dirs.length <= allowed.length, `leftover snapshot dirs: ${dirs.join(', ')}`);
        // no ingest left behind either
        assert.deepEqual(await svc.content.listStatuses(ctx), []);
      } finally {
        await svc.close();
      }
    });
  }
}

test('CLI: dist pull, images mount, rootfs and re-pull', { skip }, async () => {
  const t = await tempDir('dist-cli-');
  cleanups.push(t.cleanup);
  const root = join(t.dir, 'root');
  const ref = `${reg.host}/tricky:oci`;
  const p = await dist(['--root', root, 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref]);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /\(3 of 3 layers applied, overlayfs\)/);
  const mnt = join(t.dir, 'mnt');
  const m = await dist(['--root', root, 'images', 'mount', '--snapshotter', 'overlayfs', ref, mnt]);
  assert.equal(m.code, 0, m.stderr);
  let viaMount: string;
  try {
    // as ctr's: a lease named after the target holds the mount's snapshot, so a collection keeps it
    const leases = await dist(['--root', root, 'leases', 'ls']);
    assert.match(leases.stdout, new RegExp(`^${mnt} .*containerd.io/gc.ref.snapshot.overlayfs=${mnt}`, 'm'));
    const gc = await dist(['--root', root, '--json', 'gc']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.deepEqual(JSON.parse(gc.stdout).snapshots.items, []);
    viaMount = await oracle(mnt);
  } finally {
    const u = await dist(['--root', root, 'images', 'unmount', '--snapshotter', 'overlayfs', mnt]);
    assert.equal(u.code, 0, u.stderr);
  }
  checkTricky(viaMount, true);
  assert.doesNotMatch((await dist(['--root', root, 'leases', 'ls'])).stdout, new RegExp(mnt), 'unmount deleted the lease');
  // mounting with a snapshotter the image is not unpacked for unpacks it first, as ctr does
  const mn = await dist(['--root', root, 'images', 'mount', '--snapshotter', 'native', ref, mnt]);
  assert.equal(mn.code, 0, mn.stderr);
  try {
    checkTricky(await oracle(mnt), false);
  } finally {
    assert.equal((await dist(['--root', root, 'images', 'unmount', '--snapshotter', 'native', mnt])).code, 0);
  }
  const rf = await dist(['--root', root, 'rootfs', ref, join(t.dir, 'rootfs')]);
  assert.equal(rf.code, 0, rf.stderr);
  assert.equal(withoutSymlinkEdge(withoutDirMtimes(await oracle(join(t.dir, 'rootfs')))), withoutSymlinkEdge(withoutDirMtimes(viaMount)));
  const again = await dist(['--root', root, 'pull', '--plain-http', '--snapshotter', 'overlayfs', ref]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /\(0 of 3 layers applied, overlayfs\)/);
  const bad1 = await dist(['--root', root, 'pull', '--plain-http', '--snapshotter', 'overlayfs', `${reg.host}/bad:v1`]);
  assert.equal(bad1.code, 5, `FailedPrecondition exit code: ${bad1.stderr}`);
  assert.match(bad1.stderr, /^dist: .*diff id/m);
  // a target that is a file (or below one): one line, InvalidArgument, nothing written
  const file = join(t.dir, 'a-file');
  await writeFile(file, 'x');
  for (const args of [['rootfs', ref, file], ['rootfs', ref, join(file, 'sub')], ['images', 'mount', '--snapshotter', 'overlayfs', ref, file], ['apply', file]]) {
    const r = await dist(['--root', root, ...args]);
    assert.equal(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^dist: \/.* is not a directory: invalid argument\n$/, args.join(' '));
  }
  assert.equal(await readFile(file, 'utf8'), 'x');
  const views = await dist(['--root', root, 'snapshots', '--snapshotter', 'overlayfs', 'ls']);
  assert.doesNotMatch(views.stdout, /View/, 'no view left by the failed mount');
});
