/** containerd.services.version.v1.Version: this build's version (src/internal/version.ts). */
import { buildVersion, type VersionInfo } from '../../internal/version.js';
import { unary, type ServiceImpl } from '../grpc/handlers.js';

export { buildVersion, type VersionInfo };

/** The Version service (not namespaced). */
export function versionService(info: VersionInfo = buildVersion()): ServiceImpl {
  return {
    Version: unary<object, VersionInfo>(() => ({ version: info.version, revision: info.revision }), { namespaced: false }),
  };
}
