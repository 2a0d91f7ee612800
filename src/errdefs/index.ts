/**
 * errdefs: the one error vocabulary of dist (containerd's errdefs).
 *
 * Every layer throws one of these classes; call sites add context in the
 * message ("content sha256:…: not found"). Mapping onto gRPC status codes
 * happens only at the edges (server and proxy, see src/api/grpc/errors.ts);
 * the CLI prints `dist: <message>` and exits non-zero.
 *
 * Use the `is*` helpers to test a class: they walk `cause` chains, so wrapping
 * an error keeps its class visible.
 */

export const enum Code {
  Unknown = 'Unknown',
  InvalidArgument = 'InvalidArgument',
  NotFound = 'NotFound',
  AlreadyExists = 'AlreadyExists',
  FailedPrecondition = 'FailedPrecondition',
  Unavailable = 'Unavailable',
  NotImplemented = 'NotImplemented',
  Canceled = 'Canceled',
  DeadlineExceeded = 'DeadlineExceeded',
}

/** The class text containerd appends to messages ("…: not found"). */
export const classText: Record<Code, string> = {
  [Code.Unknown]: 'unknown',
  [Code.InvalidArgument]: 'invalid argument',
  [Code.NotFound]: 'not found',
  [Code.AlreadyExists]: 'already exists',
  [Code.FailedPrecondition]: 'failed precondition',
  [Code.Unavailable]: 'unavailable',
  [Code.NotImplemented]: 'not implemented',
  [Code.Canceled]: 'context canceled',
  [Code.DeadlineExceeded]: 'context deadline exceeded',
};

export class DistError extends Error {
  readonly code: Code;
  /** The message without the class suffix. */
  readonly detail: string;
  /** What the user can do about it (shown by the CLI after the message). */
  hint?: string;
  constructor(code: Code, detail: string, options?: { cause?: unknown }) {
    const suffix = classText[code];
    super(detail ? (detail.endsWith(suffix) ? detail : `${detail}: ${suffix}`) : suffix, options);
    this.code = code;
    this.detail = detail;
    this.name = `${code}Error`;
  }
}

export const invalidArgument = (msg: string, cause?: unknown) => new DistError(Code.InvalidArgument, msg, { cause });
export const notFound = (msg: string, cause?: unknown) => new DistError(Code.NotFound, msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown) => new DistError(Code.AlreadyExists, msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown) => new DistError(Code.FailedPrecondition, msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new DistError(Code.Unavailable, msg, { cause });
export const notImplemented = (msg: string, cause?: unknown) => new DistError(Code.NotImplemented, msg, { cause });
export const unknown = (msg: string, cause?: unknown) => new DistError(Code.Unknown, msg, { cause });
export const canceled = (msg: string, cause?: unknown) => new DistError(Code.Canceled, msg, { cause });
export const deadlineExceeded = (msg: string, cause?: unknown) => new DistError(Code.DeadlineExceeded, msg, { cause });

/** The class of an error: walks `cause`, maps AbortError/TimeoutError and ENOENT/EEXIST. */
export function codeOf(err: unknown): Code {
  for (let e: any = err, depth = 0; e != null && depth < 16; e = e.cause, depth++) {
    if (e instanceof DistError) return e.code;
    if (e?.name === 'AbortError') return Code.Canceled;
    if (e?.name === 'TimeoutError') return Code.DeadlineExceeded;
    if (e?.code === 'ENOENT') return Code.NotFound;
    if (e?.code === 'EEXIST') return Code.AlreadyExists;
  }
  return Code.Unknown;
}

export const isInvalidArgument = (e: unknown) => codeOf(e) === Code.InvalidArgument;
export const isNotFound = (e: unknown) => codeOf(e) === Code.NotFound;
export const isAlreadyExists = (e: unknown) => codeOf(e) === Code.AlreadyExists;
export const isFailedPrecondition = (e: unknown) => codeOf(e) === Code.FailedPrecondition;
export const isUnavailable = (e: unknown) => codeOf(e) === Code.Unavailable;
export const isNotImplemented = (e: unknown) => codeOf(e) === Code.NotImplemented;
export const isCanceled = (e: unknown) => codeOf(e) === Code.Canceled;
export const isDeadlineExceeded = (e: unknown) => codeOf(e) === Code.DeadlineExceeded;
export const isUnknown = (e: unknown) => codeOf(e) === Code.Unknown;

/** Attaches a hint for the user (what to do) and returns the error. */
export function withHint<E extends DistError>(err: E, hint: string): E {
  err.hint = hint;
  return err;
}

/** The first hint along an error's cause chain. */
export function hintOf(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e != null && depth < 16; e = e.cause, depth++) {
    if (e instanceof DistError && e.hint) return e.hint;
  }
  return undefined;
}

/**
 * What to do about a system error no layer classed (the file system's,
 * SQLite's), by the first errno or SQLite code along the cause chain; the
 * class stays Unknown, as containerd's.
 */
export function systemHint(err: unknown): string | undefined {
  for (let e: any = err, depth = 0; e != null && depth < 16; e = e.cause, depth++) {
    const c: string = typeof e?.code === 'string' ? e.code : '';
    if (c === 'ENOSPC' || c === 'EDQUOT' || c === 'SQLITE_FULL') {
      return "the root's file system is full: free space there, then try again; dist gc removes what no image or lease holds";
    }
    if (c === 'EROFS' || c.startsWith('SQLITE_READONLY')) return 'the root is not writable here: use a writable --root';
    if (c === 'EACCES') return 'this user may not access that path: use a --root it may write, or run as its owner';
    if (c === 'EPERM') return 'this process lacks the privilege for that operation: unpacking and mounting need root';
    if (c.startsWith('SQLITE_IOERR') || c === 'SQLITE_CANTOPEN') {
      return 'the metadata database under the root could not be read or written: check that its file system is writable and not full';
    }
  }
  return undefined;
}

/** Re-class an error keeping it as cause: `wrap(Code.NotFound, 'image "x"', err)`. */
export function wrap(code: Code, detail: string, cause: unknown): DistError {
  return new DistError(code, detail, { cause });
}

/** Throws Canceled (with the signal's reason as cause) when the signal is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw canceled('operation canceled', signal.reason);
}
