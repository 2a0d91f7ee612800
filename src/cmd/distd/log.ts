/**
 * log: structured one-line JSON logs on stderr, containerd-style fields:
 *   {"time":"2026-…Z","level":"info","msg":"serving","address":"…"}
 * Levels: trace < debug < info < warn < error; lines below the logger's
 * level are dropped before formatting.
 */
export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
export const LEVELS: readonly Level[] = ['trace', 'debug', 'info', 'warn', 'error'];

export type Fields = Record<string, unknown>;

export interface Logger {
  readonly level: Level;
  enabled(level: Level): boolean;
  log(level: Level, msg: string, fields?: Fields): void;
  trace(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  /** A logger adding `fields` to every line. */
  with(fields: Fields): Logger;
}

export function parseLevel(s: string): Level {
  const l = s.toLowerCase() === 'warning' ? 'warn' : s.toLowerCase();
  if (!(LEVELS as readonly string[]).includes(l)) throw new Error(`invalid log level ${JSON.stringify(s)} (want one of ${LEVELS.join(', ')})`);
  return l as Level;
}

function value(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Error) return v.message;
  return v;
}

export function createLogger(level: Level = 'info', write: (line: string) => void = (l) => process.stderr.write(l), base: Fields = {}): Logger {
  const min = LEVELS.indexOf(level);
  const enabled = (l: Level) => LEVELS.indexOf(l) >= min;
  const log = (l: Level, msg: string, fields: Fields = {}) => {
    if (!enabled(l)) return;
    const rec: Fields = { time: new Date().toISOString(), level: l, msg };
    for (const [k, v] of Object.entries(base)) rec[k] = value(v);
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) rec[k] = value(v);
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      line = JSON.stringify({ time: rec.time, level: l, msg });
    }
    write(line + '\n');
  };
  return {
    level,
    enabled,
    log,
    trace: (m, f) => log('trace', m, f),
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    with: (f) => createLogger(level, write, { ...base, ...f }),
  };
}

/** A logger that drops everything (tests). */
export const silent: Logger = createLogger('error', () => undefined);
