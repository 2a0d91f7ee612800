// distd's services through a plain gRPC client: containerd's Write protocol
// details, Read ranges, List batching, Status messages, events, containers,
// snapshots without a snapshotter name, Diff.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { packAny, unpackAny } from '../../src/api/grpc/any.js';
import { Connection, bidiCall, serverStreamCall, unaryCall } from '../../src/api/grpc/client.js';
import * as errdefs from '../../src/errdefs/index.js';
import type { Ctx } from '../../src/internal/context.js';
import { startTestDaemon, type TestDaemon } from './util.js';

let d: TestDaemon;
let conn: Connection;
let content: grpc.Client;

before(async () => {
  d = await startTestDaemon({ gc: { deletionThreshold: 0, scheduleDelayMs: 3_600_000 } });
  conn = new Connection(d.sock);
  content = conn.client('containerd.services.content.v1.Content');
});
after(async () => {
  conn?.close();
  await d?.stop();
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface WriteResp { action: string; offset: string; total: string; digest: string; started_at: { seconds: string } | null }

/** A Write stream with a request→response helper. */
function writer(ctx: Ctx) {
  const w = bidiCall<object, WriteResp>(content, 'Write', ctx);
  const it = w.responses[Symbol.asyncIterator]();
  return {
    async req(r: object): Promise<WriteResp> {
      await w.send(r);
      const n = await it.next();
      if (n.done) throw new Error('stream ended');
      return n.value;
    },
    async finish(): Promise<WriteResp[]> {
      w.end();
      const rest: WriteResp[] = [];
      for (;;) {
        const n = await it.next();
        if (n.done) return rest;
        rest.push(n.value);
      }
    },
    cancel: () => w.cancel(),
  };
}

async function ingest(ctx: Ctx, ref: string, data: Buffer, labels: Record<string, string> = {}): Promise<string> {
  const w = writer(ctx);
  await w.req({ action: 'STAT', ref, total: String(data.length), expected: sha(data) });
  const c = await w.req({ action: 'COMMIT', offset: '0', data, total: String(data.length), expected: sha(data), labels });
  await w.finish();
  return c.digest;
}

test('Write: STAT/WRITE/COMMIT responses, offsets, truncation, the repeated last response', async () => {
  const ctx = { namespace: 'api-write' };
  const data = randomBytes(10_000);
  const w = writer(ctx);
  const st = await w.req({ action: 'STAT', ref: 'w1', total: String(data.length), expected: sha(data) });
  assert.equal(st.action, 'STAT');
  assert.equal(st.offset, '0');
  assert.equal(st.total, String(data.length));
  assert.equal(st.digest, sha(Buffer.alloc(0)));
  assert.ok(st.started_at);
  let r = await w.req({ action: 'WRITE', offset: '0', data: data.subarray(0, 4000) });
  assert.equal(r.offset, '4000');
  assert.equal(r.digest, sha(data.subarray(0, 4000)));
  // offset 0 on a non-empty ingest truncates it
  r = await w.req({ action: 'WRITE', offset: '0', data: data.subarray(0, 1000) });
  assert.equal(r.offset, '1000');
  r = await w.req({ action: 'WRITE', offset: '1000', data: data.subarray(1000, 6000) });
  assert.equal(r.offset, '6000');
  // a wrong non-zero offset is OutOfRange and ends the stream
  await assert.rejects(w.req({ action: 'WRITE', offset: '5', data: Buffer.from('x') }), (e: Error & { cause?: { code?: number } }) => /write @5 must occur at current offset 6000/.test(e.message) && e.cause?.code === 11);
  // the ingest survived the failed stream: resume it
  const w2 = writer(ctx);
  const st2 = await w2.req({ action: 'STAT', ref: 'w1' });
  assert.equal(st2.offset, '6000');
  const c = await w2.req({ action: 'COMMIT', offset: '6000', data: data.subarray(6000), total: String(data.length), expected: sha(data) });
  assert.equal(c.action, 'COMMIT');
  assert.equal(c.offset, String(data.length));
  assert.equal(c.digest, sha(data));
  // containerd sends the last response once more after a commit
  const rest = await w2.finish();
  assert.deepEqual(rest.map((x) => [x.action, x.digest]), [['COMMIT', sha(data)]]);
});

test('Write: AlreadyExists on the first STAT with an existing expected digest; failed commit keeps the ingest', async () => {
  const ctx = { namespace: 'api-exists' };
  const data = randomBytes(5000);
  await ingest(ctx, 'e1', data);
  const w = writer(ctx);
  await assert.rejects(w.req({ action: 'STAT', ref: 'e2', total: '5000', expected: sha(data) }), (e: Error) => errdefs.isAlreadyExists(e));
  // wrong digest at commit: FailedPrecondition, ingest stays listed with its bytes
  const other = randomBytes(3000);
  const w3 = writer(ctx);
  await w3.req({ action: 'STAT', ref: 'bad', total: '3000' });
  const wrong = sha(Buffer.from('nope'));
  await assert.rejects(w3.req({ action: 'COMMIT', offset: '0', data: other, total: '3000', expected: wrong }), (e: Error) =>
    errdefs.isFailedPrecondition(e) && e.message.includes(`unexpected commit digest ${sha(other)}, expected ${wrong}`));
  const ls = await unaryCall<object, { statuses: { ref: string; offset: string; total: string }[] }>(content, 'ListStatuses', { filters: ['ref==bad'] }, ctx);
  assert.deepEqual(ls.statuses.map((s) => [s.ref, s.offset, s.total]), [['bad', '3000', '3000']]);
  const st = await unaryCall<object, { status: { ref: string; offset: string } }>(content, 'Status', { ref: 'bad' }, ctx);
  assert.equal(st.status.offset, '3000');
  await unaryCall(content, 'Abort', { ref: 'bad' }, ctx);
  await assert.rejects(unaryCall(content, 'Status', { ref: 'bad' }, ctx), (e: Error) => errdefs.isNotFound(e) && /could not get status for ref "bad"/.test(e.message));
});

test('Write: a second writer on a live ref is Unavailable; a closed one can be reopened at once', async () => {
  const ctx = { namespace: 'api-lock' };
  const w1 = writer(ctx);
  await w1.req({ action: 'STAT', ref: 'locked' });
  await w1.req({ action: 'WRITE', offset: '0', data: Buffer.from('abc') });
  const w2 = writer(ctx);
  await assert.rejects(w2.req({ action: 'STAT', ref: 'locked' }), (e: Error) => errdefs.isUnavailable(e) && /locked/.test(e.message));
  await w1.finish();
  const w3 = writer(ctx);
  assert.equal((await w3.req({ action: 'STAT', ref: 'locked' })).offset, '3');
  await w3.finish();
  const first = writer(ctx);
  await assert.rejects(first.req({ action: 'STAT', ref: '' }), (e: Error) => errdefs.isInvalidArgument(e) && /first message must have a reference/.test(e.message));
});

test('Read: offsets, sizes, chunks of at most 1 MiB, read past the end', async () => {
  const ctx = { namespace: 'api-read' };
  const data = randomBytes(2_500_000);
  const dgst = await ingest(ctx, 'r1', data);
  const read = async (offset: number, size: number) => {
    const chunks: { offset: string; data: Buffer }[] = [];
    for await (const m of serverStreamCall<object, { offset: string; data: Buffer }>(content, 'Read', { digest: dgst, offset: String(offset), size: String(size) }, ctx)) chunks.push(m);
    return chunks;
  };
  const all = await read(0, 0);
  assert.ok(all.every((c) => c.data.length <= 1 << 20));
  assert.ok(Buffer.concat(all.map((c) => c.data)).equals(data));
  let pos = 0;
  for (const c of all) {
    assert.equal(Number(c.offset), pos);
    pos += c.data.length;
  }
  const mid = await read(1000, 5000);
  assert.equal(mid[0].offset, '1000');
  assert.ok(Buffer.concat(mid.map((c) => c.data)).equals(data.subarray(1000, 6000)));
  const tail = await read(data.length - 10, 1000);
  assert.equal(Buffer.concat(tail.map((c) => c.data)).length, 10);
  assert.deepEqual(await read(data.length, 0), []);
  await assert.rejects(read(data.length + 1, 0), (e: Error & { cause?: { code?: number } }) => e.cause?.code === 11 && /read past object length 2500000 bytes/.test(e.message));
  await assert.rejects(read(0, 0).then(() => unaryCall(content, 'Info', { digest: 'sha256:nothex' }, ctx)), (e: Error) => errdefs.isInvalidArgument(e) && /"sha256:nothex" failed validation/.test(e.message));
});

test('List: infos in batches of 100, filters; Update with field paths; Delete publishes /content/delete', async () => {
  const ctx = { namespace: 'api-list' };
  const digests: string[] = [];
  for (let i = 0; i < 230; i += 23) {
    const batch = Array.from({ length: 23 }, (_, j) => i + j);
    digests.push(...(await Promise.all(batch.map((k) => ingest(ctx, `l${k}`, Buffer.from(`blob ${k}`), k % 2 ? { odd: 'yes' } : {})))));
  }
  const batches: number[] = [];
  let n = 0;
  for await (const m of serverStreamCall<object, { info: object[] }>(content, 'List', { filters: [] }, ctx)) {
    batches.push(m.info.length);
    n += m.info.length;
  }
  assert.deepEqual(batches, [100, 100, 30]);
  assert.equal(n, 230);
  let odd = 0;
  for await (const m of serverStreamCall<object, { info: object[] }>(content, 'List', { filters: ['labels.odd==yes'] }, ctx)) odd += m.info.length;
  assert.equal(odd, 115);
  const up = await unaryCall<object, { info: { labels: Record<string, string> } }>(content, 'Update', { info: { digest: digests[1], labels: { a: '1', odd: '' } }, update_mask: { paths: ['labels.a', 'labels.odd'] } }, ctx);
  assert.deepEqual(up.info.labels, { a: '1' });
  // Delete and its event.
  const ac = new AbortController();
  const events = conn.client('containerd.services.events.v1.Events');
  const got: { namespace: string; topic: string; event: { type_url: string; value: Buffer } }[] = [];
  const sub = (async () => {
    for await (const e of serverStreamCall<object, (typeof got)[number]>(events, 'Subscribe', { filters: ['topic=="/content/delete"'] }, { signal: ac.signal })) {
      got.push(e);
      ac.abort();
    }
  })().catch((e) => { if (!errdefs.isCanceled(e)) throw e; });
  await waitSubscribed();
  await unaryCall(content, 'Delete', { digest: digests[0] }, ctx);
  await sub;
  assert.equal(got.length, 1);
  assert.equal(got[0].namespace, 'api-list');
  const ev = unpackAny(got[0].event as never);
  assert.equal(ev.typeName, 'containerd.events.ContentDelete');
  assert.equal((ev.message as { digest: string }).digest, digests[0]);
  await assert.rejects(unaryCall(content, 'Info', { digest: digests[0] }, ctx), (e: Error) => errdefs.isNotFound(e));
});

async function waitSubscribed(): Promise<void> {
  for (let i = 0; i < 200 && d.daemon.events.subscribers === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(d.daemon.events.subscribers > 0, 'subscribed');
}

test('Events: Publish in the caller namespace, filters on topic/namespace/event fields, Forward', async () => {
  const events = conn.client('containerd.services.events.v1.Events');
  const images = conn.client('containerd.services.images.v1.Images');
  const ac = new AbortController();
  const got: { namespace: string; topic: string; event: { type_url: string; value: Buffer } }[] = [];
  const sub = (async () => {
    const filters = ['namespace==api-ev,topic~="^/images/"', 'event.name==forwarded'];
    for await (const e of serverStreamCall<object, (typeof got)[number]>(events, 'Subscribe', { filters }, { signal: ac.signal })) {
      got.push(e);
      if (got.length === 3) ac.abort();
    }
  })().catch((e) => { if (!errdefs.isCanceled(e)) throw e; });
  await waitSubscribed();
  const target = { media_type: 'application/vnd.oci.image.manifest.v1+json', digest: sha(Buffer.from('m')), size: '1' };
  await unaryCall(images, 'Create', { image: { name: 'ev/img:1', labels: { k: 'v' }, target } }, { namespace: 'api-ev' });
  await unaryCall(images, 'Create', { image: { name: 'other/img:1', target } }, { namespace: 'api-ev-other' }); // filtered out
  await unaryCall(images, 'Delete', { name: 'ev/img:1' }, { namespace: 'api-ev' });
  await unaryCall(events, 'Forward', { envelope: { timestamp: { seconds: '1', nanos: 0 }, namespace: 'elsewhere', topic: '/namespaces/create', event: packAny('containerd.events.NamespaceCreate', { name: 'forwarded' }) } }, {});
  await sub;
  assert.deepEqual(got.map((e) => [e.namespace, e.topic, unpackAny(e.event as never).typeName]), [
    ['api-ev', '/images/create', 'containerd.services.images.v1.ImageCreate'],
    ['api-ev', '/images/delete', 'containerd.services.images.v1.ImageDelete'],
    ['elsewhere', '/namespaces/create', 'containerd.events.NamespaceCreate'],
  ]);
  assert.deepEqual(unpackAny(got[0].event as never).message, { name: 'ev/img:1', labels: { k: 'v' } });
  // Publish needs a namespace and a valid topic.
  const any = packAny('containerd.events.ContentDelete', { digest: 'x' });
  await assert.rejects(unaryCall(events, 'Publish', { topic: '/x/y', event: any }, {}), (e: Error) => errdefs.isFailedPrecondition(e) && /failed publishing event: namespace is required/.test(e.message));
  await assert.rejects(unaryCall(events, 'Publish', { topic: 'nope', event: any }, { namespace: 'a' }), (e: Error) => errdefs.isInvalidArgument(e) && /must start with '\/'/.test(e.message));
  await unaryCall(events, 'Publish', { topic: '/custom/topic', event: any }, { namespace: 'a' });
});

test('Containers: create, get, list with filters, update with field paths, immutables, delete', async () => {
  const c = conn.client('containerd.services.containers.v1.Containers');
  const ctx = { namespace: 'api-containers' };
  const spec = { type_url: 'types.containerd.io/opencontainers/runtime-spec/1/Spec', value: Buffer.from('{"ociVersion":"1.0.2"}') };
  const created = await unaryCall<object, { container: { id: string; created_at: object; runtime: { name: string }; spec: { type_url: string; value: Buffer } } }>(c, 'Create', {
    container: { id: 'c1', labels: { app: 'web' }, image: 'docker.io/library/busybox:latest', runtime: { name: 'io.containerd.runc.v2' }, spec, snapshotter: 'native', snapshot_key: 'c1-snap', extensions: { ext: { type_url: 'x', value: Buffer.from('1') } } },
  }, ctx);
  assert.equal(created.container.id, 'c1');
  assert.ok(created.container.created_at);
  assert.ok(created.container.spec.value.equals(spec.value));
  await assert.rejects(unaryCall(c, 'Create', { container: { id: 'c1', runtime: { name: 'r' }, spec } }, ctx), (e: Error) => errdefs.isAlreadyExists(e));
  await assert.rejects(unaryCall(c, 'Create', { container: { id: 'c2', runtime: { name: 'r' } } }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && /container.Spec must be set/.test(e.message));
  await assert.rejects(unaryCall(c, 'Create', { container: { id: 'c2', spec } }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && /container.Runtime.Name must be set/.test(e.message));
  await unaryCall(c, 'Create', { container: { id: 'c2', runtime: { name: 'io.containerd.runc.v2' }, spec, labels: { app: 'db' } } }, ctx);
  const list = await unaryCall<object, { containers: { id: string }[] }>(c, 'List', { filters: ['labels.app==web'] }, ctx);
  assert.deepEqual(list.containers.map((x) => x.id), ['c1']);
  const streamed: string[] = [];
  for await (const m of serverStreamCall<object, { container: { id: string } }>(c, 'ListStream', { filters: ['runtime.name==io.containerd.runc.v2'] }, ctx)) streamed.push(m.container.id);
  assert.deepEqual(streamed, ['c1', 'c2']);
  const up = await unaryCall<object, { container: { labels: Record<string, string>; image: string; extensions: Record<string, unknown> } }>(c, 'Update', {
    container: { id: 'c1', labels: { tier: 'front' }, image: 'new:img' }, update_mask: { paths: ['labels.tier', 'image', 'extensions.ext'] },
  }, ctx);
  assert.deepEqual(up.container.labels, { app: 'web', tier: 'front' });
  assert.equal(up.container.image, 'new:img');
  assert.deepEqual(up.container.extensions, {});
  await assert.rejects(unaryCall(c, 'Update', { container: { id: 'c1', runtime: { name: 'other' }, spec, snapshotter: 'native' } }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && /Runtime.Name field is immutable/.test(e.message));
  await assert.rejects(unaryCall(c, 'Update', { container: { id: 'c1' }, update_mask: { paths: ['runtime'] } }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && /cannot update "runtime" field/.test(e.message));
  await assert.rejects(unaryCall(c, 'Update', { container: { id: '' } }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && /Container.ID required/.test(e.message));
  // A namespace holding containers cannot be deleted.
  const nsc = conn.client('containerd.services.namespaces.v1.Namespaces');
  await assert.rejects(unaryCall(nsc, 'Delete', { name: 'api-containers' }, {}), (e: Error) => errdefs.isFailedPrecondition(e) && /still has containers/.test(e.message));
  await unaryCall(c, 'Delete', { id: 'c1' }, ctx);
  await unaryCall(c, 'Delete', { id: 'c2' }, ctx);
  await assert.rejects(unaryCall(c, 'Get', { id: 'c1' }, ctx), (e: Error) => errdefs.isNotFound(e));
  await unaryCall(nsc, 'Delete', { name: 'api-containers' }, {});
});

test('Snapshots: an empty snapshotter name follows the namespace label, then the daemon default', async () => {
  const s = conn.client('containerd.services.snapshots.v1.Snapshots');
  const nsc = conn.client('containerd.services.namespaces.v1.Namespaces');
  const ctx = { namespace: 'api-snap' };
  await unaryCall(nsc, 'Create', { namespace: { name: 'api-snap', labels: { 'containerd.io/defaults/snapshotter': 'native' } } }, {});
  const m = await unaryCall<object, { mounts: { type: string; source: string; options: string[] }[] }>(s, 'Prepare', { snapshotter: '', key: 'k1' }, ctx);
  assert.equal(m.mounts[0].type, 'bind');
  assert.match(m.mounts[0].source, /\/snapshots\/native\//);
  assert.deepEqual(m.mounts[0].options, ['rbind', 'rw']);
  const st = await unaryCall<object, { info: { name: string; kind: string } }>(s, 'Stat', { snapshotter: 'native', key: 'k1' }, ctx);
  assert.deepEqual([st.info.name, st.info.kind], ['k1', 'ACTIVE']);
  const m2 = await unaryCall<object, { mounts: { source: string }[] }>(s, 'Prepare', { snapshotter: '', key: 'k2' }, { namespace: 'api-snap-unlabelled' });
  assert.match(m2.mounts[0].source, /\/snapshots\/overlayfs\//);
  await assert.rejects(unaryCall(s, 'Stat', { snapshotter: 'zfs', key: 'k1' }, ctx), (e: Error) => errdefs.isInvalidArgument(e) && e.message === 'snapshotter not loaded: zfs: invalid argument');
  const u = await unaryCall<object, { size: string; inodes: string }>(s, 'Usage', { snapshotter: 'native', key: 'k1' }, ctx);
  assert.ok(Number(u.inodes) >= 1);
  await unaryCall(s, 'Cleanup', { snapshotter: 'native' }, ctx);
  await unaryCall(s, 'Remove', { snapshotter: 'native', key: 'k1' }, ctx);
  await unaryCall(s, 'Remove', { snapshotter: 'overlayfs', key: 'k2' }, { namespace: 'api-snap-unlabelled' });
});

test('Diff: empty trees give an empty layer; unknown media type is Unimplemented; Apply of a missing blob is NotFound', async () => {
  const df = conn.client('containerd.services.diff.v1.Diff');
  const empty = await unaryCall<object, { diff: { media_type: string; digest: string; size: string } }>(df, 'Diff', { left: [], right: [], media_type: 'application/vnd.oci.image.layer.v1.tar' }, { namespace: 'api-diff' });
  assert.equal(empty.diff.media_type, 'application/vnd.oci.image.layer.v1.tar');
  assert.equal(empty.diff.digest, sha(Buffer.alloc(1024)));
  assert.equal(empty.diff.size, '1024');
  await assert.rejects(unaryCall(df, 'Diff', { left: [], right: [], media_type: 'application/x-nope' }, { namespace: 'api-diff' }), (e: Error) => errdefs.isNotImplemented(e) && /unsupported diff media type/.test(e.message));
  await assert.rejects(
    unaryCall(df, 'Apply', { diff: { media_type: 'application/vnd.oci.image.layer.v1.tar', digest: sha(Buffer.from('none')), size: '4' }, mounts: [{ type: 'bind', source: d.dir, options: ['rbind', 'rw'] }] }, { namespace: 'api-diff' }),
    (e: Error) => errdefs.isNotFound(e),
  );
});

test('namespaced calls without a namespace header: FailedPrecondition "namespace is required"', async () => {
  await assert.rejects(unaryCall(content, 'ListStatuses', { filters: [] }, {}), (e: Error) => errdefs.isFailedPrecondition(e) && /namespace is required/.test(e.message));
  // Namespaces/Get of an unknown namespace: empty labels, no error (containerd 1.6).
  const nsc = conn.client('containerd.services.namespaces.v1.Namespaces');
  const g = await unaryCall<object, { namespace: { name: string; labels: object } }>(nsc, 'Get', { name: 'never-made' }, {});
  assert.deepEqual(g.namespace, { name: 'never-made', labels: {} });
});
