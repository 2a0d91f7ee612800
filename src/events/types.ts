/**
 * events: containerd's event model. An event is a protobuf message published
 * on a topic ("/images/create") in a namespace; subscribers receive it in an
 * Envelope. Topics are "/"-separated identifiers; the payload travels as a
 * google.protobuf.Any whose type_url is the bare message name
 * ("containerd.events.ContentDelete"), as containerd's typeurl encodes it.
 */
import type { Ctx } from '../internal/context.js';
import type { Timestamp } from '../internal/time.js';

/** google.protobuf.Any: full message name (or URL) plus the encoded message. */
export interface AnyValue {
  type_url: string;
  value: Buffer;
}

export interface Envelope {
  timestamp: Timestamp;
  namespace: string;
  topic: string;
  event: AnyValue;
}

export interface Publisher {
  /**
   * Publishes `event` (a message of type `typeName`, or an already packed
   * Any when typeName is undefined) on topic in ctx.namespace
   * (FailedPrecondition without one; InvalidArgument for a bad topic).
   */
  publish(ctx: Ctx, topic: string, event: object, typeName?: string): Promise<void>;
}

export interface Forwarder {
  /** Distributes an envelope as is (another publisher's event); validates namespace, topic and timestamp. */
  forward(ctx: Ctx, envelope: Envelope): Promise<void>;
}

export interface Subscriber {
  /**
   * Envelopes published from now on that match any filter (none: all), in
   * order, until ctx.signal aborts (the iteration then just ends). Filter
   * fields: `namespace`, `topic`, `event.<field>` (fields of the payload).
   */
  subscribe(ctx: Ctx, filters?: string[]): AsyncIterable<Envelope>;
}

/** Topics the daemon publishes (containerd's names). */
export const Topics = {
  ImageCreate: '/images/create',
  ImageUpdate: '/images/update',
  ImageDelete: '/images/delete',
  ContentDelete: '/content/delete',
  SnapshotPrepare: '/snapshot/prepare',
  SnapshotCommit: '/snapshot/commit',
  SnapshotRemove: '/snapshot/remove',
  NamespaceCreate: '/namespaces/create',
  NamespaceUpdate: '/namespaces/update',
  NamespaceDelete: '/namespaces/delete',
  ContainerCreate: '/containers/create',
  ContainerUpdate: '/containers/update',
  ContainerDelete: '/containers/delete',
} as const;
