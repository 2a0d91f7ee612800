/**
 * The parts of undici this client uses — Agent, EnvHttpProxyAgent and the
 * request API — loaded on first use, from their own modules: undici's index
 * also loads fetch, WebSocket, the cache and the mocks (~9 MB of memory and
 * ~40 ms of start-up), and most commands never talk to a registry at all.
 * undici is pinned in package.json; these are its CommonJS modules.
 */
import { createRequire } from 'node:module';
import { setFlagsFromString } from 'node:v8';
import type { Agent as AgentT, buildConnector as buildConnectorT, Dispatcher, EnvHttpProxyAgent as EnvHttpProxyAgentT } from 'undici';

export interface Undici {
  Agent: typeof AgentT;
  EnvHttpProxyAgent: typeof EnvHttpProxyAgentT;
  buildConnector: typeof buildConnectorT;
  /** undici's request(url, opts) with an explicit dispatcher. */
  request(url: string | URL, opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { method?: Dispatcher.HttpMethod; dispatcher: Dispatcher }): Promise<Dispatcher.ResponseData>;
}

let mod: Undici | undefined;

export function undici(): Undici {
  if (mod) return mod;
  // undici parses HTTP with llhttp compiled to WebAssembly. V8 would tier that
  // module up with TurboFan on a background thread, and a short command's exit
  // waits ~60 ms for that compile; the baseline (Liftoff) code parses plenty fast
  // (bodies are sliced, not parsed). Set before the module is compiled.
  setFlagsFromString('--liftoff-only');
  const require = createRequire(import.meta.url);
  const apiRequest = require('undici/lib/api/api-request.js') as (this: Dispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
  mod = {
    Agent: require('undici/lib/dispatcher/agent.js') as typeof AgentT,
    get EnvHttpProxyAgent() {
      // undici's index puts its request API (connect among it) on every
      // dispatcher; loaded piecemeal, the proxy agent's CONNECT needs it added.
      const dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: Record<string, unknown> };
      dispatcher.prototype.connect ??= require('undici/lib/api/api-connect.js');
      return require('undici/lib/dispatcher/env-http-proxy-agent.js') as typeof EnvHttpProxyAgentT;
    },
    buildConnector: require('undici/lib/core/connect.js') as typeof buildConnectorT,
    request(url, opts) {
      const u = typeof url === 'string' ? new URL(url) : url;
      const { dispatcher, ...rest } = opts;
      return apiRequest.call(dispatcher, {
        ...rest,
        origin: u.origin,
        path: u.search ? `${u.pathname}${u.search}` : u.pathname,
        method: opts.method ?? (opts.body ? 'PUT' : 'GET'),
      } as Dispatcher.RequestOptions);
    },
  };
  return mod;
}
