/**
 * errors: errdefs classes ↔ gRPC status codes, as containerd's errdefs/grpc.go.
 *
 * Server side: `toGRPC(err)` keeps the message (containerd's
 * "<detail>: <class>" form) and picks the code from the error's class; an
 * error that already is a gRPC status passes through; anything unclassified
 * becomes Unknown. Client side: `fromGRPC(err)` rebuilds a DistError of the
 * matching class, stripping the ": <class>" suffix from the status message so
 * it is not doubled when the DistError appends it again.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Code, DistError, classText, codeOf } from '../../errdefs/index.js';

const toStatus: Record<Code, status> = {
  [Code.Unknown]: status.UNKNOWN,
  [Code.InvalidArgument]: status.INVALID_ARGUMENT,
  [Code.NotFound]: status.NOT_FOUND,
  [Code.AlreadyExists]: status.ALREADY_EXISTS,
  [Code.FailedPrecondition]: status.FAILED_PRECONDITION,
  [Code.Unavailable]: status.UNAVAILABLE,
  [Code.NotImplemented]: status.UNIMPLEMENTED,
  [Code.Canceled]: status.CANCELLED,
  [Code.DeadlineExceeded]: status.DEADLINE_EXCEEDED,
};

const fromStatus = new Map<number, Code>([
  [status.INVALID_ARGUMENT, Code.InvalidArgument],
  [status.NOT_FOUND, Code.NotFound],
  [status.ALREADY_EXISTS, Code.AlreadyExists],
  [status.FAILED_PRECONDITION, Code.FailedPrecondition],
  [status.UNAVAILABLE, Code.Unavailable],
  [status.UNIMPLEMENTED, Code.NotImplemented],
  [status.CANCELLED, Code.Canceled],
  [status.DEADLINE_EXCEEDED, Code.DeadlineExceeded],
]);

/** The gRPC status code for an errdefs class. */
export function grpcCode(code: Code): status {
  return toStatus[code];
}

/** The errdefs class for a gRPC status code (Unknown for unmapped codes). */
export function codeFromGRPC(code: number): Code {
  return fromStatus.get(code) ?? Code.Unknown;
}

/** True for grpc-js status errors (numeric code plus details). */
export function isServiceError(err: unknown): err is ServiceError {
  const e = err as Partial<ServiceError> | null;
  return e != null && typeof e === 'object' && typeof e.code === 'number' && Number.isInteger(e.code) && typeof e.details === 'string';
}

/** Builds a grpc-js ServiceError with the given code and message. */
export function serviceError(code: status, message: string): ServiceError {
  const e = new Error(message) as ServiceError;
  e.code = code;
  e.details = message;
  e.metadata = new Metadata();
  return e;
}

/** Maps an error to a gRPC status error (containerd's errdefs.ToGRPC). */
export function toGRPC(err: unknown): ServiceError {
  if (isServiceError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return serviceError(toStatus[codeOf(err)], message);
}

/**
 * Maps a gRPC status error to a DistError (containerd's errdefs.FromGRPC);
 * the original error is kept as `cause`. Non-gRPC errors become Unknown.
 */
export function fromGRPC(err: unknown): DistError {
  const code = isServiceError(err) ? codeFromGRPC(err.code) : Code.Unknown;
  const desc = isServiceError(err) ? err.details : err instanceof Error ? err.message : String(err);
  return new DistError(code, rebase(desc, classText[code]), { cause: err });
}

/** Drops a trailing ": <class text>" (or the whole text when it is only that). */
function rebase(desc: string, cls: string): string {
  if (desc === cls) return '';
  const suffix = `: ${cls}`;
  return desc.endsWith(suffix) ? desc.slice(0, -suffix.length) : desc;
}
