export * from './types.js';
export { LocalSnapshotter, prefixError, type LocalOptions } from './local.js';
export { NativeSnapshotter, copyTree } from './native/index.js';
export { OverlaySnapshotter, type OverlayOptions } from './overlay/index.js';
export { MetaStore, Transaction, snapshotFilter, adaptSnapshot, type SnapshotRecord, type StoredInfo } from './storage/index.js';
export { diskUsage } from './usage.js';
