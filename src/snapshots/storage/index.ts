export { MetaStore, Transaction, type SnapshotRecord, type StoredInfo } from './metastore.js';
export { applyUpdate, adaptSnapshot, snapshotFilter } from './fields.js';
