/** Namespace helpers shared by the metadata stores. */
import { failedPrecondition } from '../errdefs/index.js';
import * as identifiers from '../identifiers/index.js';
import type { Ctx } from '../internal/context.js';

/** The ctx's namespace, validated: FailedPrecondition when missing, InvalidArgument when invalid. */
export function namespaceRequired(ctx: Ctx): string {
  const ns = ctx.namespace;
  if (!ns) throw failedPrecondition('namespace is required');
  identifiers.validate(ns);
  return ns;
}
