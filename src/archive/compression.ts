/**
 * Layer compression (containerd's archive/compression): detection by media
 * type and by magic bytes, streaming decompression and compression.
 *
 * Decompression runs off the main thread: gzip through `igzip -dc` (Debian
 * isal), else `unpigz -dc`/`pigz -dc`, else Node's zlib (libuv pool); zstd
 * through `zstd -dc`, else zstd-napi. A tool's failure (non-zero exit; its
 * stderr is in the message) becomes a stream error; abort or destroy kills it.
 * Nothing is buffered beyond the streams' own high-water marks.
 *
 * Detection follows containerd's DecompressStream: the magic bytes decide
 * (gzip 1f 8b 08, zstd 28 b5 2f fd or a skippable frame), whatever the media
 * type says (registries serve plain tars as "…tar.gzip"; a blob without magic
 * is read as a plain tar, which then fails to parse if it is not one). The
 * media type is checked first: a compression this code does not know
 * ("+bzip2", "+encrypted"…) is NotImplemented.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, closeSync, constants as fsConstants, createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { canceled, invalidArgument, notImplemented, unknown } from '../errdefs/index.js';
import { ChunkPool } from '../internal/chunkpool.js';
import { native } from '../internal/sys.js';

export type Compression = 'none' | 'gzip' | 'zstd';

/** Gzip decompressor backends, fastest first; 'zlib' is Node's own. */
export type GzipBackend = 'igzip' | 'unpigz' | 'pigz' | 'zlib';
export type ZstdBackend = 'zstd' | 'napi';

export const MediaTypes = {
  OCILayer: 'application/vnd.oci.image.layer.v1.tar',
  OCILayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCILayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCILayerNonDistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCILayerNonDistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCILayerNonDistributableZstd: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

/**
 * Compression named by a layer media type; undefined when the media type is
 * not a known layer type (then only the magic bytes decide). Docker's
 * "rootfs.diff.tar.gzip" is gzip by name but containerd accepts any bytes
 * (some registries serve plain tars under it), as do we via the magic.
 */
export function compressionOfMediaType(mediaType: string): Compression | undefined {
  const mt = mediaType.split(';')[0]!.trim();
  if (mt.startsWith('application/vnd.docker.image.rootfs.')) {
    if (mt.endsWith('.tar.gzip')) return 'gzip';
    if (mt.endsWith('.tar.zstd')) return 'zstd';
    if (mt.endsWith('.tar')) return 'none';
    return undefined;
  }
  if (mt.startsWith('application/vnd.oci.image.layer.')) {
    const plus = mt.indexOf('+');
    if (plus < 0) return 'none';
    const suffix = mt.slice(plus + 1);
    if (suffix === 'gzip') return 'gzip';
    if (suffix === 'zstd') return 'zstd';
    throw notImplemented(`unsupported layer compression ${JSON.stringify(suffix)} in media type ${mt}`);
  }
  if (mt === 'application/x-tar' || mt === 'application/tar') return 'none';
  if (mt === 'application/gzip' || mt === 'application/x-gzip') return 'gzip';
  if (mt === 'application/zstd') return 'zstd';
  return undefined;
}

/** Compression of a stream from its first bytes (10 are enough). */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 3 && head[0] === 0x1f && head[1] === 0x8b && head[2] === 0x08) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  // zstd skippable frame: magic 0x184D2A50..0x184D2A5F (little endian)
  if (head.length >= 8 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) return 'zstd';
  return 'none';
}

/** Extension containerd uses for a compression ("gz", "zst", ""). */
export function extension(c: Compression): string {
  return c === 'gzip' ? 'gz' : c === 'zstd' ? 'zst' : '';
}

// ---- tool lookup -------------------------------------------------------------

const toolCache = new Map<string, string | null>();

/** Absolute path of an executable on PATH, or undefined. Cached. */
export function findTool(name: string): string | undefined {
  if (toolCache.has(name)) return toolCache.get(name) ?? undefined;
  let found: string | null = null;
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      found = p;
      break;
    } catch {
      /* next */
    }
  }
  toolCache.set(name, found);
  return found ?? undefined;
}

function disabled(env: string): boolean {
  const v = process.env[env];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

/** The gzip decompressor that would be used (env DIST_GZIP_BACKEND forces one; CONTAINERD_DISABLE_PIGZ=1 skips the tools). */
export function gzipBackend(): GzipBackend {
  const forced = process.env.DIST_GZIP_BACKEND as GzipBackend | undefined;
  if (forced) return forced;
  if (disabled('CONTAINERD_DISABLE_PIGZ')) return 'zlib';
  if (findTool('igzip')) return 'igzip';
  if (findTool('unpigz')) return 'unpigz';
  if (findTool('pigz')) return 'pigz';
  return 'zlib';
}

/** The zstd decompressor that would be used (env DIST_ZSTD_BACKEND forces one). */
export function zstdBackend(): ZstdBackend {
  const forced = process.env.DIST_ZSTD_BACKEND as ZstdBackend | undefined;
  if (forced) return forced;
  return findTool('zstd') ? 'zstd' : 'napi';
}

// ---- child process filter ------------------------------------------------------

const STDERR_CAP = 4096;

/** Output chunk of a tool read through the native pipe reader. */
const PIPE_CHUNK = 1 << 20;

/**
 * Set on decompress()'s output (opts.digest): when `active`, every output
 * byte is digested as it is read (the native pipe reader, off the main
 * thread) and `value` holds the hex digest once the output ended, so a
 * consumer need not hash the bytes again.
 */
export const PREDIGEST = Symbol('dist.predigest');

/**
 * On a layer stream handed to decompress: its producer takes a chunk's memory
 * back (to refill it) once the decompressor's input pipe took that chunk.
 * The producer decides which chunks are its own to reuse.
 */
export const RECYCLE = Symbol('dist.recycle');
export interface Predigest {
  algorithm: string;
  active?: boolean;
  value?: string;
  /**
   * While active: hands an output chunk's memory (its `.buffer`) back for
   * reuse. The caller promises to hold no view of it any more.
   */
  recycle?: (ab: ArrayBufferLike) => void;
}

/** Output chunks read ahead of the consumer per decompressor. */
const READ_AHEAD = 3;
/**
 * Free output chunks kept for reuse, shared by the decompressors of a
 * process (a pull's layers apply side by side, and one's chunks serve the
 * next): at most 16 of PIPE_CHUNK bytes.
 */
const outputChunks = new ChunkPool(16);

/**
 * Writes input into a child's stdin, then ends it; `written` gets each chunk
 * once the pipe took it (its memory is free again). Rejects with the first
 * error of the input or of stdin. Returns as soon as stdin closes (the child
 * exited or was killed), without waiting for the input's next chunk.
 */
async function feedChild(stdin: Writable, input: AsyncIterable<Buffer>, written?: (chunk: Buffer) => void): Promise<void> {
  const it = input[Symbol.asyncIterator]();
  let failed: Error | undefined;
  let closed = false;
  let wake: () => void = () => undefined;
  let onGone: (v: undefined) => void = () => undefined;
  const gone = new Promise<undefined>((resolve) => (onGone = resolve));
  const onError = (err: Error) => {
    failed ??= err;
    onGone(undefined);
    wake();
  };
  const onClose = () => {
    closed = true;
    onGone(undefined);
    wake();
  };
  const onDrain = () => wake();
  stdin.on('error', onError).on('close', onClose).on('drain', onDrain);
  try {
    for (;;) {
      const next = it.next();
      next.catch(() => undefined); // settles unobserved when stdin went first
      const r = await Promise.race([next, gone]);
      if (!r || failed || closed) {
        it.return?.().catch(() => undefined); // no waiting for a stalled input
        break;
      }
      if (r.done) {
        stdin.end();
        break;
      }
      const chunk = r.value;
      if (stdin.write(chunk, written && ((err) => err || written(chunk)))) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (failed || closed) resolve();
      });
    }
  } finally {
    stdin.off('error', onError).off('close', onClose).off('drain', onDrain);
  }
  if (failed) throw failed;
}

/** Waits for the queued reads and drops them (their outcome no longer matters). */
async function settle(queued: Array<{ n: Promise<number> }>): Promise<void> {
  while (queued.length) await queued.shift()!.n.catch(() => 0);
}

/**
 * Streams input through `tool args…` (stdin → stdout); `written` gets each
 * input chunk once the pipe took it. Errors: spawn failure,
 * input errors, non-zero exit (with stderr) — thrown from the iterator after
 * the output drained. Abort or early return kills the child.
 */
async function* childFilter(tool: string, args: string[], input: AsyncIterable<Buffer> | number, signal?: AbortSignal, pre?: Predigest, written?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  if (signal?.aborted) throw canceled(`${tool}: operation canceled`, signal.reason);
  // With the addon, stdout is a pipe of ours read in 1 MiB chunks (and
  // digested) on the reader's own thread; else Node's 64 KiB stream reads.
  const fds = native?.pipe();
  let child: ChildProcessByStdio<Writable, Readable | null, Readable>;
  try {
    // input: an fd (a file the tool reads itself) or bytes we feed it
    child = spawn(tool, args, { stdio: [typeof input === 'number' ? input : 'pipe', fds ? fds[1] : 'pipe', 'pipe'] }) as ChildProcessByStdio<Writable, Readable | null, Readable>;
  } finally {
    if (fds) closeSync(fds[1]);
  }
  const reader = fds ? new native!.PipeReader(fds[0], pre?.algorithm) : undefined;
  const queued: Array<{ buf: Buffer; n: Promise<number> }> = [];
  if (reader && pre) {
    pre.active = true;
    pre.recycle = (ab) => {
      outputChunks.put(ab);
    };
  }
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < STDERR_CAP) stderr += d.slice(0, STDERR_CAP - stderr.length);
  });
  let spawnError: Error | undefined;
  const closed = new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve) => {
    child.once('error', (err) => {
      spawnError = err;
      resolve({ code: null, sig: null });
    });
    child.once('close', (code, sig) => resolve({ code, sig }));
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onAbort = () => kill();
  signal?.addEventListener('abort', onAbort, { once: true });
  let feedError: unknown;
  // EPIPE on stdin is not an error by itself (Go's exec ignores it too): the
  // exit status tells whether the tool was happy.
  const feed =
    typeof input === 'number'
      ? Promise.resolve()
      : feedChild(child.stdin.on('error', () => {}), input, written).catch((err) => {
          if ((err as NodeJS.ErrnoException)?.code !== 'EPIPE') {
            feedError = err;
            kill();
          }
        });
  try {
    if (reader) {
      // reads queued ahead: the tool never waits for the consumer's pace
      // until READ_AHEAD chunks are ready
      const issue = (): void => {
        const buf = outputChunks.get(PIPE_CHUNK);
        queued.push({ buf, n: reader.read(buf) });
      };
      for (let i = 0; i < READ_AHEAD; i++) issue();
      for (;;) {
        const { buf, n } = queued[0]!;
        const got = await n;
        queued.shift();
        if (got === 0) break;
        issue();
        yield got === buf.length ? buf : buf.subarray(0, got);
      }
      await settle(queued);
      if (pre) pre.value = reader.digest();
    } else {
      for await (const chunk of child.stdout! as AsyncIterable<Buffer>) yield chunk;
    }
    const { code, sig } = await closed;
    await feed;
    if (signal?.aborted) throw canceled(`${tool}: operation canceled`, signal.reason);
    if (feedError) throw feedError;
    if (spawnError) throw unknown(`${tool}: ${spawnError.message}`, spawnError);
    if (code !== 0) {
      const msg = stderr.trim().replace(/\s+/g, ' ');
      throw unknown(`${tool} ${args.join(' ')}: ${code !== null ? `exit status ${code}` : `killed by ${sig}`}${msg ? `: ${msg}` : ''}`);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    kill();
    if (reader) {
      await settle(queued); // the tool is gone: they end at once
      reader.close();
    } else {
      child.stdout!.destroy();
    }
  }
}

/** Streams input through a Node Transform (zlib, zstd-napi). */
async function* transformFilter(t: NodeJS.ReadWriteStream & Readable, input: AsyncIterable<Buffer>, what: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let feedError: unknown;
  const feed = pipeline(Readable.from(input, { objectMode: false }), t as unknown as NodeJS.WritableStream, { signal }).catch((err) => {
    feedError = err;
    t.destroy();
  });
  try {
    try {
      for await (const chunk of t as AsyncIterable<Buffer>) yield chunk;
    } catch (err) {
      await feed;
      if (signal?.aborted) throw canceled(`${what}: operation canceled`, signal.reason);
      if (feedError) throw feedError;
      throw invalidArgument(`${what}: ${(err as Error).message}`, err);
    }
    await feed;
    if (signal?.aborted) throw canceled(`${what}: operation canceled`, signal.reason);
    if (feedError) throw feedError;
  } finally {
    t.destroy();
  }
}

/** Reads the first `n` bytes (or all, if shorter) and returns them with an iterable of the whole stream. */
async function peek(input: Readable, n: number): Promise<{ head: Buffer; all: AsyncIterable<Buffer> }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let len = 0;
  let done = false;
  while (len < n) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (!b.length) continue;
    chunks.push(b);
    len += b.length;
  }
  const head = Buffer.concat(chunks, len).subarray(0, Math.min(n, len));
  async function* all(): AsyncGenerator<Buffer> {
    try {
      yield* chunks;
      chunks.length = 0;
      while (!done) {
        const r = await it.next();
        if (r.done) return;
        yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      }
    } finally {
      if (!done) await it.return?.();
    }
  }
  return { head, all: all() };
}

export interface DecompressOpts {
  /** The descriptor's media type: an unknown compression suffix is refused (the magic bytes decide the rest). */
  mediaType?: string;
  signal?: AbortSignal;
  /** Force a backend (tests); default: the fastest available. */
  gzip?: GzipBackend;
  zstd?: ZstdBackend;
  /** Called once the compression is known. */
  onDetect?: (c: Compression, backend: string) => void;
  /** Digest the output with this algorithm where that is free (see PREDIGEST). */
  digest?: string;
}

function gunzip(backend: GzipBackend, input: AsyncIterable<Buffer> | number, signal?: AbortSignal, pre?: Predigest, written?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  switch (backend) {
    case 'igzip':
    case 'unpigz':
    case 'pigz': {
      const tool = findTool(backend);
      if (!tool) throw notImplemented(`gzip backend ${backend} is not installed`);
      return childFilter(tool, ['-d', '-c'], input, signal, pre, written);
    }
    case 'zlib':
      return transformFilter(createGunzip({ chunkSize: 128 << 10 }) as never, fdStream(input), 'gzip', signal);
    default:
      throw invalidArgument(`unknown gzip backend ${JSON.stringify(backend)}`);
  }
}

/**
 * zstd-napi, required on first use: a native addon, loaded only by the
 * commands that need it (and never into the CLI's startup snapshot, whose
 * code cannot import() at run time).
 */
function zstdNapi(): typeof import('zstd-napi') {
  return createRequire(import.meta.url)('zstd-napi') as typeof import('zstd-napi');
}

async function unzstd(backend: ZstdBackend, input: AsyncIterable<Buffer> | number, signal?: AbortSignal, pre?: Predigest, written?: (chunk: Buffer) => void): Promise<AsyncGenerator<Buffer>> {
  switch (backend) {
    case 'zstd': {
      const tool = findTool('zstd');
      if (!tool) throw notImplemented('zstd is not installed');
      return childFilter(tool, ['-d', '-c', '-q'], input, signal, pre, written);
    }
    case 'napi': {
      const { DecompressStream } = zstdNapi();
      return transformFilter(new DecompressStream() as never, fdStream(input), 'zstd', signal);
    }
    default:
      throw invalidArgument(`unknown zstd backend ${JSON.stringify(backend)}`);
  }
}

/** Bytes of input: a stream, or a file descriptor read from its current position (not closed). */
function fdStream(input: AsyncIterable<Buffer> | number): AsyncIterable<Buffer> {
  return typeof input === 'number' ? createReadStream('', { fd: input, autoClose: false, highWaterMark: 1 << 20 }) : input;
}

/** A layer: a stream of its bytes, or a local file holding them (tools then read the file themselves). */
export type LayerSource = Readable | { path: string };

/**
 * Decompresses a layer stream. Returns at once; the compression is detected
 * from the first bytes as they arrive (opts.onDetect reports it). Errors of
 * the input, the detection or the decompressor are errors of the result.
 */
export function decompress(input: LayerSource, opts: DecompressOpts = {}): Readable {
  // destroying the result stops the decompressor at once (kills the child)
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, stop.signal]) : stop.signal;
  const pre: Predigest | undefined = opts.digest ? { algorithm: opts.digest } : undefined;
  const recycle = input instanceof Readable ? (input as Readable & { [RECYCLE]?: (chunk: Buffer) => void })[RECYCLE] : undefined;
  async function* run(): AsyncGenerator<Buffer> {
    if (signal?.aborted) throw canceled('decompress: operation canceled', signal.reason);
    if (opts.mediaType) compressionOfMediaType(opts.mediaType); // throws for unknown compressions
    if (input instanceof Readable) {
      const { head, all } = await peek(input, 10);
      yield* by(detectCompression(head), all);
      return;
    }
    const fh = await open(input.path, 'r');
    try {
      const head = Buffer.alloc(10);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      yield* by(detectCompression(head.subarray(0, bytesRead)), fh.fd);
    } finally {
      await fh.close();
    }
  }
  async function* by(c: Compression, all: AsyncIterable<Buffer> | number): AsyncGenerator<Buffer> {
    if (c === 'none') {
      opts.onDetect?.(c, 'none');
      for await (const chunk of fdStream(all)) {
        if (signal?.aborted) throw canceled('decompress: operation canceled', signal.reason);
        yield chunk;
      }
      return;
    }
    if (c === 'gzip') {
      const backend = opts.gzip ?? gzipBackend();
      opts.onDetect?.(c, backend);
      yield* gunzip(backend, all, signal, pre, recycle);
      return;
    }
    const backend = opts.zstd ?? zstdBackend();
    opts.onDetect?.(c, backend);
    yield* await unzstd(backend, all, signal, pre, recycle);
  }
  const out = Readable.from(run(), { objectMode: false, highWaterMark: 1 << 20 });
  if (pre) (out as Readable & { [PREDIGEST]?: Predigest })[PREDIGEST] = pre;
  out.once('close', () => {
    if (!out.readableEnded) stop.abort(new Error('decompress: output destroyed'));
    if (input instanceof Readable && !input.destroyed && !input.readableEnded) input.destroy();
  });
  return out;
}

export interface CompressOpts {
  signal?: AbortSignal;
  /** gzip 1-9 (default 6), zstd 1-19 (default 3). */
  level?: number;
  /** Use Node's zlib / zstd-napi even when pigz / zstd are installed. */
  builtin?: boolean;
}

/** Compresses a stream (pigz or zlib for gzip; zstd or zstd-napi for zstd). */
export function compress(input: Readable, compression: Compression, opts: CompressOpts = {}): Readable {
  const { signal } = opts;
  async function* run(): AsyncGenerator<Buffer> {
    const src = input as AsyncIterable<Buffer>;
    if (compression === 'none') {
      yield* src;
      return;
    }
    if (compression === 'gzip') {
      const level = opts.level ?? 6;
      const pigz = opts.builtin ? undefined : findTool('pigz');
      if (pigz) yield* childFilter(pigz, ['-c', `-${level}`, '-n'], src, signal);
      else yield* transformFilter(createGzip({ level }) as never, src, 'gzip', signal);
      return;
    }
    if (compression === 'zstd') {
      const level = opts.level ?? 3;
      const zstd = opts.builtin ? undefined : findTool('zstd');
      if (zstd) {
        yield* childFilter(zstd, ['-c', '-q', `-${level}`], src, signal);
      } else {
        const { CompressStream } = zstdNapi();
        yield* transformFilter(new CompressStream({ compressionLevel: level }) as never, src, 'zstd', signal);
      }
      return;
    }
    throw invalidArgument(`unknown compression ${JSON.stringify(compression)}`);
  }
  return Readable.from(run(), { objectMode: false, highWaterMark: 1 << 20 });
}
