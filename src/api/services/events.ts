/**
 * containerd.services.events.v1.Events over an Exchange (containerd's
 * services/events/service.go): Publish (in the caller's namespace: without
 * one it fails FailedPrecondition "failed publishing event: namespace is
 * required"), Forward (an envelope as is) and Subscribe (a stream of
 * envelopes matching any filter, until the client goes away).
 */
import type { Exchange } from '../../events/exchange.js';
import { invalidArgument } from '../../errdefs/index.js';
import { serverStream, unary, type HandlerOptions, type ServiceImpl } from '../grpc/handlers.js';
import type { events, google } from '../grpc/messages.js';
import { fromTs, ts } from './convert.js';

export function eventsService(exchange: Exchange, opts: HandlerOptions = {}): ServiceImpl {
  const h: HandlerOptions = { onError: opts.onError, namespaced: false };
  return {
    Publish: unary<events.PublishRequest, google.Empty>(async (req, ctx) => {
      if (!req.event) throw invalidArgument('event must be set');
      await exchange.publish(ctx, req.topic, req.event);
      return {};
    }, h),

    Forward: unary<events.ForwardRequest, google.Empty>(async (req, ctx) => {
      const env = req.envelope;
      if (!env) throw invalidArgument('envelope must be set');
      if (!env.timestamp) throw invalidArgument('timestamp must be set on forwarded event');
      await exchange.forward(ctx, {
        timestamp: fromTs(env.timestamp),
        namespace: env.namespace,
        topic: env.topic,
        event: { type_url: env.event?.type_url ?? '', value: Buffer.from(env.event?.value ?? []) },
      });
      return {};
    }, h),

    Subscribe: serverStream<events.SubscribeRequest, events.Envelope>(async function* (req, ctx) {
      for await (const env of exchange.subscribe(ctx, req.filters ?? [])) {
        yield { timestamp: ts(env.timestamp), namespace: env.namespace, topic: env.topic, event: env.event };
      }
    }, h),
  };
}
