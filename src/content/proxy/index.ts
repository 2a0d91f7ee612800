/** content/proxy: the content Store over containerd's Content gRPC service. */
export { ProxyContentStore, CONTENT_SERVICE } from './store.js';
export { RemoteWriter, MAX_WRITE_CHUNK } from './writer.js';
export { RemoteReaderAt } from './reader.js';
