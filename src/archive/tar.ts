/**
 * A streaming tar reader with the semantics of Go's archive/tar (what
 * containerd's archive.Apply reads layers with):
 *
 *  - formats: V7, USTAR (name prefix), PAX ('x' records merged into the next
 *    entry, 'g' read and ignored), GNU ('L'/'K' long name/link, atime field),
 *    STAR; header checksums are verified (signed or unsigned sums).
 *  - numbers: octal (space/NUL padded) or base-256; PAX `size`, `uid`, `gid`,
 *    `mtime`, `atime` (fractional) override the header.
 *  - `'\0'` type: a directory if the name ends in "/", else a regular file.
 *  - header-only types (links, devices, dirs, FIFOs) carry no data whatever
 *    their size field says.
 *  - end of archive: two zero blocks, or a clean end of input at a header
 *    boundary (Go accepts both); a zero block followed by a non-zero block is
 *    an error. Bytes after the end marker are left to the caller (containerd
 *    drains them into the diffID digest).
 *  - sparse files, as Go reads them: old GNU ('S', map in the header and its
 *    extension blocks), PAX GNU.sparse 0.0 (offset/numbytes records), 0.1
 *    (GNU.sparse.map) and 1.0 (map at the start of the data). The header gives
 *    the real size (and GNU.sparse.name the name); data events give the
 *    logical content, holes as zeros (containerd copies with Read, so holes
 *    are written as zeros too). A map out of order, beyond the size, or
 *    describing more or less data than the entry holds is an error. Old GNU
 *    entries keep type 'S' (containerd's applier refuses that type).
 *
 * Push-pull interface, no copies of file data: `push(chunk)` hands over the
 * next input chunk, then `next()` returns events until it returns null (needs
 * more input). Data events are subarrays of the pushed chunk — callers may
 * keep them (chunks are never reused by the reader). Nothing else keeps a
 * view of a chunk once next() returned null for it (names and PAX values
 * are copies), so a caller done with the data may reuse the chunk.
 */
import { invalidArgument } from '../errdefs/index.js';

export interface TarTime {
  sec: number;
  nsec: number;
}

/**
 * Names are byte strings: one char per byte (latin1), so names that are not
 * UTF-8 survive exactly (Go strings are bytes too). Buffer.from(name,
 * 'latin1') gives the bytes; toString('utf8') of those the display form.
 */
export interface TarHeader {
  name: string;
  linkname: string;
  /** Type flag character ('0' regular, '1' hardlink, '2' symlink, '3' char, '4' block, '5' dir, '6' fifo…). */
  type: string;
  size: number;
  /** Mode bits as stored (permission bits plus setuid/setgid/sticky in the low 12 bits). */
  mode: number;
  uid: number;
  gid: number;
  mtime: TarTime;
  /** Only when the archive carries one (PAX atime, GNU/STAR atime field). */
  atime?: TarTime;
  devmajor: number;
  devminor: number;
  /** SCHILY.xattr.* PAX records (name without the prefix, raw value bytes), in archive order. */
  xattrs?: Array<[string, Buffer]>;
  /** All PAX records of the entry (values raw). */
  pax?: Map<string, Buffer>;
}

export type TarEvent =
  | { kind: 'header'; header: TarHeader }
  | { kind: 'data'; data: Buffer }
  | { kind: 'end' };

const BLOCK = 512;
/** Cap on PAX and GNU long-name payloads (Go: maxSpecialFileSize). */
export const MAX_SPECIAL_FILE_SIZE = 1 << 20;
const PAX_XATTR = 'SCHILY.xattr.';

const enum State {
  Header,
  Data,
  Meta,
  Pad,
  Done,
  /** Old GNU sparse extension blocks (after the header, before the data). */
  SparseExt,
  /** PAX GNU sparse 1.0: the map's blocks at the start of the data. */
  SparseMap,
  /** Logical content of a sparse entry: data fragments and holes. */
  Sparse,
}

/** Holes are read from here (never written to). */
let zeros: Buffer | undefined;
const ZEROS_SIZE = 1 << 20;

/** A decimal as Go's strconv.ParseInt(s, 10, 64) accepts it; NaN otherwise. */
function decimal(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) return NaN;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : NaN;
}

/** A GNU sparse map's offset/length tokens as numbers (each a decimal). */
function sparseNumbers(toks: string[]): number[] {
  return toks.map((t) => {
    const v = decimal(t);
    if (Number.isNaN(v)) throw bad('invalid GNU sparse map');
    return v;
  });
}

/** Go's validateSparseEntries over [offset, length, …]: in order, no overlap, inside size. */
function validSparse(map: number[], size: number): boolean {
  if (size < 0) return false;
  let end = 0;
  for (let i = 0; i < map.length; i += 2) {
    const off = map[i]!;
    const len = map[i + 1]!;
    if (!(off >= 0 && len >= 0) || off + len > size || end > off) return false;
    end = off + len;
  }
  return true;
}

const enum Fmt {
  Unknown,
  V7,
  USTAR, // USTAR or PAX
  GNU,
  STAR,
}

const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

function bad(msg: string): Error {
  return invalidArgument(`archive/tar: invalid tar header: ${msg}`);
}

/** Go's parser.parseString: bytes up to the first NUL, as a byte string. */
function cstring(b: Buffer, start: number, end: number): string {
  const i = b.indexOf(0, start);
  const stop = i >= 0 && i < end ? i : end;
  return stop > start ? b.toString('latin1', start, stop) : '';
}

function isSpaceOrNul(c: number): boolean {
  return c === 0 || c === 0x20;
}

/** Go's parseNumeric: base-256 when the high bit is set, else octal. */
function numeric(b: Buffer, start: number, end: number, field: string): number {
  if (b[start]! & 0x80) {
    const neg = (b[start]! & 0x40) !== 0;
    const inv = neg ? 0xff : 0;
    let x = 0n;
    for (let i = start; i < end; i++) {
      let c = b[i]! ^ inv;
      if (i === start) c &= 0x7f;
      if (x >> 56n) throw bad(`${field} overflows`);
      x = (x << 8n) | BigInt(c);
    }
    if (x >> 63n) throw bad(`${field} overflows`);
    const v = neg ? -x - 1n : x;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${field} too large`);
    return Number(v);
  }
  // s++ runs on every call (a do-while): leading spaces are rare, and the
  // optimized parser would be thrown away the first time a branch it never
  // saw run ran (see ops.ts's Packer.encode)
  let s = start - 1;
  do s++;
  while (s < end && isSpaceOrNul(b[s]!));
  let e = end;
  while (e > s && isSpaceOrNul(b[e - 1]!)) e--;
  if (s === e) return 0;
  // Go parses up to the first NUL then requires all-octal digits (a loop:
  // Buffer.indexOf is a binding call, and this runs ~8 times per header)
  let x = 0;
  for (let i = s; i < e; i++) {
    if (b[i] === 0) break;
    const c = b[i]! - 0x30;
    if (c < 0 || c > 7) throw bad(`${field} is not octal`);
    x = x * 8 + c;
  }
  if (x > Number.MAX_SAFE_INTEGER) throw bad(`${field} too large`);
  return x;
}

function octalOrNaN(b: Buffer, start: number, end: number): number {
  try {
    return numeric(b, start, end, 'checksum');
  } catch {
    return NaN;
  }
}

function isZeroBlock(b: Buffer, off: number): boolean {
  for (let i = off; i < off + BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

function formatOf(b: Buffer, o: number): Fmt {
  const want = octalOrNaN(b, o + 148, o + 156);
  // unsigned sum with the checksum field read as spaces; the signed sum only if that fails
  let sum = 0;
  for (let i = o; i < o + BLOCK; i++) sum += b[i]!;
  let field = 0;
  for (let i = o + 148; i < o + 156; i++) field += b[i]!;
  const unsigned = sum - field + 8 * 0x20;
  if (want !== unsigned) {
    let signed = 0;
    for (let i = 0; i < BLOCK; i++) {
      const c = i >= 148 && i < 156 ? 0x20 : b[o + i]!;
      signed += c >= 0x80 ? c - 256 : c;
    }
    if (want !== signed) return Fmt.Unknown;
  }
  // magic "ustar\0" (USTAR/PAX, STAR when the trailer reads "tar\0") or "ustar " + " \0" (GNU)
  const m = o + 257;
  if (b[m] !== 0x75 || b[m + 1] !== 0x73 || b[m + 2] !== 0x74 || b[m + 3] !== 0x61 || b[m + 4] !== 0x72) return Fmt.V7;
  if (b[m + 5] === 0) {
    const t = o + 508;
    return b[t] === 0x74 && b[t + 1] === 0x61 && b[t + 2] === 0x72 && b[t + 3] === 0 ? Fmt.STAR : Fmt.USTAR;
  }
  if (b[m + 5] === 0x20 && b[m + 6] === 0x20 && b[m + 7] === 0) return Fmt.GNU;
  return Fmt.V7;
}

/** PAX time "%d[.%d]" (may be negative) as Go's parsePAXTime. */
export function parsePaxTime(s: string): TarTime {
  const dot = s.indexOf('.');
  const ss = dot >= 0 ? s.slice(0, dot) : s;
  let sn = dot >= 0 ? s.slice(dot + 1) : '';
  if (!/^[+-]?\d+$/.test(ss)) throw bad(`invalid PAX time ${JSON.stringify(s)}`);
  const sec = Number(ss);
  if (!Number.isSafeInteger(sec)) throw bad(`invalid PAX time ${JSON.stringify(s)}`);
  if (!sn) return { sec, nsec: 0 };
  if (!/^\d+$/.test(sn)) throw bad(`invalid PAX time ${JSON.stringify(s)}`);
  sn = (sn + '000000000').slice(0, 9);
  const ns = Number(sn);
  if (ss.startsWith('-')) {
    // Go: time.Unix(secs, -nsecs), normalized
    if (ns === 0) return { sec, nsec: 0 };
    return { sec: sec - 1, nsec: 1e9 - ns };
  }
  return { sec, nsec: ns };
}

function parsePaxDecimal(v: Buffer, key: string): number {
  const s = v.toString('latin1');
  const n = decimal(s);
  if (Number.isNaN(n)) throw bad(`invalid PAX ${key} ${JSON.stringify(s)}`);
  return n;
}

/** PAX extended header records ("%d %s=%s\n"), values raw. */
export function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  // GNU sparse 0.0 repeats offset/numbytes pairs: gathered, in order, as a 0.1 map
  const sparse: string[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    if (sp < 0) throw bad('malformed PAX record');
    const lenStr = buf.toString('latin1', pos, sp);
    if (!/^\d+$/.test(lenStr)) throw bad('malformed PAX record length');
    const n = Number(lenStr);
    if (n < 5 || pos + n > buf.length || sp + 1 >= pos + n) throw bad('malformed PAX record length');
    const recEnd = pos + n - 1;
    if (buf[recEnd] !== 0x0a) throw bad('PAX record missing newline');
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq < 0 || eq >= recEnd) throw bad('PAX record missing "="');
    const key = buf.toString('utf8', sp + 1, eq);
    // a copy: values outlive the chunk they came in (chunks may be reused)
    const value = Buffer.from(buf.subarray(eq + 1, recEnd));
    if (key === '' || key.includes('\0')) throw bad('invalid PAX key');
    if ((key === 'path' || key === 'linkpath' || key === 'uname' || key === 'gname') && value.includes(0)) {
      throw bad(`PAX ${key} contains NUL`);
    }
    pos += n;
    if (key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes') {
      if ((key === 'GNU.sparse.offset') !== (sparse.length % 2 === 0) || value.includes(0x2c)) throw bad('malformed GNU sparse 0.0 map');
      sparse.push(value.toString('latin1'));
      continue;
    }
    out.set(key, value);
  }
  if (sparse.length) out.set('GNU.sparse.map', Buffer.from(sparse.join(','), 'latin1'));
  return out;
}

export class TarReader {
  private state = State.Header;
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Staging for a header split across chunks. */
  private hdr = Buffer.alloc(BLOCK);
  private hdrFill = 0;
  /** Where the block block() returned lies. */
  private blk: Buffer = this.hdr;
  private remaining = 0;
  private pad = 0;
  private padDone = 0;
  private zeroSeen = false;
  // pending meta entry (PAX / GNU long name)
  private metaType = '';
  private metaParts: Buffer[] = [];
  private metaLen = 0;
  private pax: Map<string, Buffer> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  // sparse entry: its header until the map is complete; the map; the fragments
  private sparseHdr: TarHeader | undefined;
  private sparseMap: number[] = [];
  private sparseText = '';
  /** Fragment lengths in logical order: > 0 data, < 0 a hole. */
  private frags: number[] = [];
  private frag = 0;
  /** Bytes pushed so far. */
  bytesIn = 0;

  /** True once the end-of-archive marker (or a clean end of input) was read. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /** Hands over the next chunk; the previous one must be fully consumed (next() returned null). */
  push(chunk: Buffer): void {
    if (this.pos < this.chunk.length && this.state !== State.Done) throw new Error('TarReader.push: previous chunk not consumed');
    this.chunk = chunk;
    this.pos = 0;
    this.bytesIn += chunk.length;
  }

  /** Signals end of input; throws when the archive is truncated. */
  end(): void {
    if (this.state === State.Done) return;
    if (this.state === State.Header && this.hdrFill === 0) {
      this.state = State.Done; // Go: EOF at a header boundary ends the archive
      return;
    }
    if (this.state === State.Pad && this.padDone === 0) {
      this.state = State.Done;
      return;
    }
    throw invalidArgument('archive/tar: unexpected EOF');
  }

  next(): TarEvent | null {
    for (;;) {
      const avail = this.chunk.length - this.pos;
      switch (this.state) {
        case State.Done:
          this.pos = this.chunk.length;
          return null;
        case State.Data: {
          if (this.remaining === 0) {
            this.state = this.pad ? State.Pad : State.Header;
            this.padDone = 0;
            return { kind: 'end' };
          }
          if (avail === 0) return null;
          return { kind: 'data', data: this.take(this.remaining) };
        }
        case State.Pad: {
          if (avail === 0) return null;
          const n = Math.min(avail, this.pad - this.padDone);
          this.pos += n;
          this.padDone += n;
          if (this.padDone === this.pad) this.state = State.Header;
          continue;
        }
        case State.Meta: {
          if (this.remaining > 0) {
            if (avail === 0) return null;
            this.metaParts.push(this.take(this.remaining));
            if (this.remaining > 0) return null;
          }
          this.finishMeta();
          this.state = this.pad ? State.Pad : State.Header;
          this.padDone = 0;
          continue;
        }
        case State.Header: {
          const o = this.block();
          if (o < 0) return null;
          const ev = this.onHeader(this.blk, o);
          if (ev) return ev;
          continue;
        }
        case State.SparseExt: {
          const o = this.block();
          if (o < 0) return null;
          // 21 entries of offset[12] length[12], then the "extended" flag
          this.oldSparseEntries(this.blk, o, 21);
          if (this.blk[o + 504]! > 0) continue;
          return this.startSparse();
        }
        case State.SparseMap: {
          if (this.remaining < BLOCK) throw invalidArgument('archive/tar: unexpected EOF in GNU sparse map');
          const o = this.block();
          if (o < 0) return null;
          this.remaining -= BLOCK;
          this.sparseText += this.blk.toString('latin1', o, o + BLOCK);
          const toks = this.sparseText.split('\n');
          const have = toks.length - 1; // complete tokens
          if (have < 1) continue;
          const count = decimal(toks[0]!);
          if (!(count >= 0)) throw bad('invalid GNU sparse map');
          if (have < 1 + 2 * count) continue;
          this.sparseText = '';
          this.sparseMap = sparseNumbers(toks.slice(1, 1 + 2 * count));
          return this.startSparse();
        }
        case State.Sparse: {
          if (this.frag === this.frags.length) {
            this.state = this.pad ? State.Pad : State.Header;
            this.padDone = 0;
            return { kind: 'end' };
          }
          const f = this.frags[this.frag]!;
          if (f < 0) {
            zeros ??= Buffer.alloc(ZEROS_SIZE);
            const n = Math.min(-f, ZEROS_SIZE);
            this.frags[this.frag] = f + n;
            if (f + n === 0) this.frag++;
            return { kind: 'data', data: zeros.subarray(0, n) };
          }
          if (avail === 0) return null;
          const data = this.take(f);
          this.frags[this.frag] = f - data.length;
          if (f === data.length) this.frag++;
          return { kind: 'data', data };
        }
      }
    }
  }

  /**
   * The next 512-byte block: its offset in this.blk (the current chunk, or
   * the staging buffer when it was split across chunks), or -1 when more
   * input is needed.
   */
  private block(): number {
    const avail = this.chunk.length - this.pos;
    if (this.hdrFill === 0 && avail >= BLOCK) {
      this.blk = this.chunk;
      this.pos += BLOCK;
      return this.pos - BLOCK;
    }
    if (avail === 0) return -1;
    const n = Math.min(avail, BLOCK - this.hdrFill);
    this.chunk.copy(this.hdr, this.hdrFill, this.pos, this.pos + n);
    this.pos += n;
    this.hdrFill += n;
    if (this.hdrFill < BLOCK) return -1;
    this.hdrFill = 0;
    this.blk = this.hdr;
    return 0;
  }

  /** Up to max bytes of the current chunk, as a view; consumed and counted off `remaining`. */
  private take(max: number): Buffer {
    const n = Math.min(this.chunk.length - this.pos, max);
    const data = this.chunk.subarray(this.pos, this.pos + n);
    this.pos += n;
    this.remaining -= n;
    return data;
  }

  /** Adds the old-GNU sparse entries at b[o…] (up to max, ending at the first empty one). */
  private oldSparseEntries(b: Buffer, o: number, max: number): void {
    for (let i = 0; i < max; i++) {
      const e = o + i * 24;
      if (b[e] === 0) return;
      this.sparseMap.push(numeric(b, e, e + 12, 'sparse offset'), numeric(b, e + 12, e + 24, 'sparse length'));
    }
  }

  /** The map is complete: checks it against the sizes, lays out the fragments, returns the header. */
  private startSparse(): TarEvent {
    const h = this.sparseHdr!;
    const map = this.sparseMap;
    this.sparseHdr = undefined;
    this.sparseMap = [];
    if (!validSparse(map, h.size)) throw bad('invalid sparse map');
    const frags: number[] = [];
    let pos = 0;
    let data = 0;
    for (let i = 0; i < map.length; i += 2) {
      const off = map[i]!;
      const len = map[i + 1]!;
      if (len === 0) continue;
      if (off > pos) frags.push(pos - off);
      frags.push(len);
      data += len;
      pos = off + len;
    }
    if (h.size > pos) frags.push(pos - h.size);
    // Go fails the read at the end of such an entry (errMissData / errUnrefData)
    if (data > this.remaining) throw invalidArgument('archive/tar: sparse file references non-existent data');
    if (data < this.remaining) throw invalidArgument('archive/tar: sparse file contains unreferenced data');
    this.frags = frags;
    this.frag = 0;
    this.state = State.Sparse;
    return { kind: 'header', header: h };
  }

  private onHeader(b: Buffer, o: number): TarEvent | null {
    if (isZeroBlock(b, o)) {
      if (this.zeroSeen) {
        this.state = State.Done;
        this.pos = this.chunk.length;
        return null;
      }
      this.zeroSeen = true;
      return null;
    }
    if (this.zeroSeen) throw bad('zero block followed by a non-zero block');
    const fmt = formatOf(b, o);
    if (fmt === Fmt.Unknown) throw bad('checksum mismatch or unknown format');

    let type = String.fromCharCode(b[o + 156]!);
    let name = cstring(b, o, o + 100);
    let linkname = cstring(b, o + 157, o + 257);
    let size = numeric(b, o + 124, o + 136, 'size');
    const mode = numeric(b, o + 100, o + 108, 'mode');
    let uid = numeric(b, o + 108, o + 116, 'uid');
    let gid = numeric(b, o + 116, o + 124, 'gid');
    let mtime: TarTime = { sec: numeric(b, o + 136, o + 148, 'mtime'), nsec: 0 };
    let atime: TarTime | undefined;
    let devmajor = 0;
    let devminor = 0;
    if (fmt !== Fmt.V7) {
      devmajor = numeric(b, o + 329, o + 337, 'devmajor');
      devminor = numeric(b, o + 337, o + 345, 'devminor');
      let prefix = '';
      if (fmt === Fmt.USTAR) {
        prefix = cstring(b, o + 345, o + 500);
      } else if (fmt === Fmt.STAR) {
        prefix = cstring(b, o + 345, o + 476);
        atime = { sec: numeric(b, o + 476, o + 488, 'atime'), nsec: 0 };
      } else if (fmt === Fmt.GNU && b[o + 345] !== 0) {
        try {
          atime = { sec: numeric(b, o + 345, o + 357, 'atime'), nsec: 0 };
        } catch {
          atime = undefined; // Go: a buggy GNU atime field is ignored
        }
      }
      if (prefix) name = `${prefix}/${name}`;
    }
    if (size < 0) throw bad('negative size');

    const headerOnly = HEADER_ONLY.has(type);
    const dataSize = headerOnly ? 0 : size;
    switch (type) {
      case 'x':
      case 'g':
      case 'L':
      case 'K': {
        if (dataSize > MAX_SPECIAL_FILE_SIZE) throw bad(`${type} entry larger than ${MAX_SPECIAL_FILE_SIZE} bytes`);
        this.state = State.Meta;
        this.metaType = type;
        this.metaParts = [];
        this.metaLen = dataSize;
        this.remaining = dataSize;
        this.pad = (BLOCK - (dataSize % BLOCK)) % BLOCK;
        return null;
      }
      case 'S':
        if (fmt !== Fmt.GNU) throw bad('sparse entry not in GNU format');
        break;
    }

    const pax = this.pax;
    let xattrs: Array<[string, Buffer]> | undefined;
    if (pax) {
      for (const [k, v] of pax) {
        if (k.startsWith(PAX_XATTR)) {
          (xattrs ??= []).push([k.slice(PAX_XATTR.length), v]);
          continue;
        }
        if (v.length === 0) continue; // Go: keep the header's value
        switch (k) {
          case 'path':
            name = v.toString('latin1');
            break;
          case 'linkpath':
            linkname = v.toString('latin1');
            break;
          case 'uid':
            uid = parsePaxDecimal(v, k);
            break;
          case 'gid':
            gid = parsePaxDecimal(v, k);
            break;
          case 'size':
            size = parsePaxDecimal(v, k);
            if (size < 0) throw bad('negative size');
            break;
          case 'mtime':
            mtime = parsePaxTime(v.toString('latin1'));
            break;
          case 'atime':
            atime = parsePaxTime(v.toString('latin1'));
            break;
          case 'ctime':
            parsePaxTime(v.toString('latin1'));
            break;
        }
      }
    }
    if (this.longName !== undefined && this.longName !== '') name = this.longName;
    if (this.longLink !== undefined && this.longLink !== '') linkname = this.longLink;
    this.pax = undefined;
    this.longName = undefined;
    this.longLink = undefined;
    if (type === '\0') type = name.endsWith('/') ? '5' : '0';

    const header: TarHeader = { name, linkname, type, size, mode, uid, gid, mtime, devmajor, devminor };
    if (atime) header.atime = atime;
    if (xattrs) header.xattrs = xattrs;
    if (pax) header.pax = pax;
    const n = HEADER_ONLY.has(type) ? 0 : size;
    this.remaining = n;
    this.pad = (BLOCK - (n % BLOCK)) % BLOCK;
    if (type === 'S') {
      // old GNU: real size at 483, 4 map entries at 386, "extended" flag at 482
      header.size = numeric(b, o + 483, o + 495, 'realsize');
      this.sparseHdr = header;
      this.sparseMap = [];
      this.oldSparseEntries(b, o + 386, 4);
      if (b[o + 482]! > 0) {
        this.state = State.SparseExt;
        return null;
      }
      return this.startSparse();
    }
    const version = pax && this.sparseVersion(pax);
    if (version) {
      if (HEADER_ONLY.has(type)) throw bad('sparse map on an entry without data');
      const sname = pax.get('GNU.sparse.name');
      if (sname?.length) header.name = sname.toString('latin1');
      const key = pax.get('GNU.sparse.size')?.length ? 'GNU.sparse.size' : 'GNU.sparse.realsize';
      const real = pax.get(key);
      if (real?.length) header.size = parsePaxDecimal(real, key);
      this.sparseHdr = header;
      this.sparseMap = [];
      if (version === '1.0') {
        this.sparseText = '';
        this.state = State.SparseMap;
        return null;
      }
      const count = decimal(pax.get('GNU.sparse.numblocks')?.toString('latin1') ?? '');
      const text = pax.get('GNU.sparse.map')?.toString('latin1') ?? '';
      const parts = text === '' ? [] : text.split(',');
      if (!(count >= 0) || parts.length !== 2 * count) throw bad('invalid GNU sparse map');
      this.sparseMap = sparseNumbers(parts);
      return this.startSparse();
    }
    this.state = State.Data;
    return { kind: 'header', header };
  }

  /** Go's readGNUSparsePAXHeaders: which GNU sparse PAX format the records use ('0.x', '1.0'), if any. */
  private sparseVersion(pax: Map<string, Buffer>): '0.x' | '1.0' | undefined {
    const major = pax.get('GNU.sparse.major')?.toString('latin1') ?? '';
    const minor = pax.get('GNU.sparse.minor')?.toString('latin1') ?? '';
    if (major === '0' && (minor === '0' || minor === '1')) return '0.x';
    if (major === '1' && minor === '0') return '1.0';
    if (major !== '' || minor !== '') return undefined; // an unknown version: a plain file, as in Go
    return pax.get('GNU.sparse.map')?.length ? '0.x' : undefined;
  }

  private finishMeta(): void {
    const buf = this.metaParts.length === 1 ? this.metaParts[0]! : Buffer.concat(this.metaParts, this.metaLen);
    this.metaParts = [];
    const type = this.metaType;
    this.metaType = '';
    switch (type) {
      case 'x': {
        const recs = parsePax(buf);
        // several 'x' headers in a row: Go keeps only the last one
        this.pax = recs;
        break;
      }
      case 'g':
        parsePax(buf); // validated, then ignored (containerd ignores global headers)
        break;
      case 'L':
        this.longName = cstring(buf, 0, buf.length);
        break;
      case 'K':
        this.longLink = cstring(buf, 0, buf.length);
        break;
    }
  }
}
