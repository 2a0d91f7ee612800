export * from './types.js';
export { LocalSnapshotter, prefixError, type LocalOptions } from './local.js';
export { diskUsage } from './usage.js';
