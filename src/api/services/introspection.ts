/**
 * containerd.services.introspection.v1.Introspection: the server's UUID and
 * the plugin list the daemon hands in. Plugins filters follow containerd:
 * only `type` and `id` are filterable (other fields are never present).
 */
import { adaptObject, parseAll } from '../../filters/index.js';
import { unary, type ServiceImpl } from '../grpc/handlers.js';

export interface PluginPlatform {
  os: string;
  architecture: string;
  variant?: string;
}

/** A plugin as reported on the wire (field names as in the .proto). */
export interface PluginInfo {
  /** e.g. "io.containerd.snapshotter.v1" */
  type: string;
  /** e.g. "native" */
  id: string;
  requires?: string[];
  platforms?: PluginPlatform[];
  exports?: Record<string, string>;
  capabilities?: string[];
  /** google.rpc.Status when the plugin failed to load. */
  init_err?: { code: number; message: string } | null;
}

export interface IntrospectionOptions {
  /** Stable server UUID (containerd keeps one per root directory). */
  uuid: string;
  /** The plugins, or a function returning them at call time. */
  plugins: readonly PluginInfo[] | (() => readonly PluginInfo[]);
}

interface PluginsRequest {
  filters: string[];
}

/** The Introspection service (not namespaced). */
export function introspectionService(opts: IntrospectionOptions): ServiceImpl {
  const list = () => (typeof opts.plugins === 'function' ? opts.plugins() : opts.plugins);
  return {
    Plugins: unary<PluginsRequest, { plugins: PluginInfo[] }>(
      (req) => {
        const filter = parseAll(...(req.filters ?? []));
        const plugins = list().filter((p) => filter.match(adaptObject({ type: p.type, id: p.id })));
        return { plugins: [...plugins] };
      },
      { namespaced: false },
    ),
    Server: unary<object, { uuid: string }>(() => ({ uuid: opts.uuid }), { namespaced: false }),
  };
}
