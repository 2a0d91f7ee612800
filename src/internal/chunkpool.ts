/**
 * chunkpool: buffers lent for chunks of a stream and taken back once their
 * consumer is done with them, so a stream's bytes cycle through a few
 * buffers instead of taking fresh memory per chunk until the GC frees it
 * (page faults, RSS). Only memory the pool lent is taken back, never a slice
 * of Node's shared buffer pool; at most `max` spares are kept.
 */
export class ChunkPool {
  private readonly lent = new WeakSet<ArrayBufferLike>();
  private readonly spare: ArrayBufferLike[] = [];

  constructor(private readonly max: number) {}

  /** A buffer of size bytes: a spare of that size, or new. Its contents are undefined. */
  get(size: number): Buffer {
    const i = this.spare.findIndex((ab) => ab.byteLength === size);
    if (i >= 0) return Buffer.from(this.spare.splice(i, 1)[0]! as ArrayBuffer);
    const b = Buffer.allocUnsafeSlow(size); // its own memory
    this.lent.add(b.buffer);
    return b;
  }

  /** Takes back the memory of a buffer get() gave (anything else is ignored). The caller holds no view of it any more. */
  put(ab: ArrayBufferLike): void {
    if (this.lent.has(ab) && this.spare.length < this.max && !this.spare.includes(ab)) this.spare.push(ab);
  }
}
