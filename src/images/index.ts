/** images: media types, image documents, handlers and image helpers. */
export * from './mediatypes.js';
export * from './manifest.js';
export * from './handlers.js';
export * from './image.js';
export * from './helpers.js';
