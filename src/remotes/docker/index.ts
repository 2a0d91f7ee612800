/**
 * remotes/docker: Resolver, Fetcher and Pusher for OCI distribution / Docker
 * registries. Start with createResolver(); see resolver.ts for the flow,
 * auth.ts for authorization, hosts.ts for hosts.toml, errors.ts for the
 * error classes.
 */
export { createResolver, DockerResolver, type ResolverOptions } from './resolver.js';
export { DockerFetcher } from './fetcher.js';
export {
  DockerPusher, type PushOpts, distributionSourceLabelKey, appendDistributionSource, selectMountCandidate,
  DISTRIBUTION_SOURCE_LABEL,
} from './pusher.js';
export {
  Authorizer, parseChallenges, fetchToken, repositoryScope, type Credentials, type CredentialsFn, type Challenge,
} from './auth.js';
export {
  configureHosts, parseHostsToml, isLocalhost, DEFAULT_HOSTS_DIRS, type RegistryHost, type RegistryHosts,
  type HostOptions, type Capability, type Timeouts, type TLSOptions,
} from './hosts.js';
export { RegistryError, isUnauthorized, findRegistryError, MAX_ERROR_BODY, type RegistryErrorEntry } from './errors.js';
export { type RetryOptions } from './request.js';
export { dockerCredentials, loadDockerConfig, credentialsFromAuths, dockerConfigDir, DOCKER_HUB_AUTH_KEY } from './config.js';
export { MediaType, isManifestType, DEFAULT_MAX_MANIFEST_SIZE } from './base.js';
export { createLimiter, type Limiter } from '../../internal/limiter.js';
