/**
 * Go (RE2) regular expressions on top of JavaScript's RegExp.
 *
 * Filters use `~=` with Go's regexp syntax, and Go's `MatchString` is a
 * partial match: `re.test(s)` on a RegExp without the `g` flag is the same.
 * The translator walks the Go pattern once and emits an equivalent pattern
 * for a `u`-mode RegExp, so that what Go accepts we accept with the same
 * meaning, and what Go rejects we reject:
 *
 * - `.` never matches `\n` unless `s`; `^`/`$` are text anchors unless `m`
 *   (then only `\n` separates lines); `\A`, `\z` are text anchors.
 * - `\s` is Go's ASCII `[\t\n\f\r ]`; `\d`, `\w`, `\b` are ASCII in both.
 * - `\Q…\E`, `\x{10FFFF}`, octal `\123`, `\a`, `\pN`, `\p{Greek}`,
 *   `\p{^Greek}`, POSIX `[[:alpha:]]`, `(?P<name>…)`, `{` / `}` / `]` as
 *   literals where Go takes them literally, the `U` (ungreedy) flag.
 * - Rejected as in Go: lookarounds, backreferences, `\C`, unknown escapes,
 *   repeat counts above 1000, bad ranges.
 *
 * Limitation: the case-insensitive flag `i` maps onto the RegExp `i` flag,
 * so it is supported only for the whole pattern (`(?i)` at its very start);
 * changing it anywhere else throws. Under it, `\b`/`\B` count U+017F (ſ)
 * and U+212A (Kelvin sign) as word characters, where RE2 does not. The JS engine backtracks, so unlike RE2
 * a pathological pattern can take exponential time.
 */

import { invalidArgument } from '../errdefs/index.js';

/** Largest repeat count RE2 accepts. */
const MAX_REPEAT = 1000;

interface Flags {
  s: boolean; // dot matches \n
  m: boolean; // ^ and $ match at line boundaries
  U: boolean; // ungreedy: swap x* and x*?
}

class GoRegexpError extends Error {}

/** Compiles a Go regexp into a RegExp; throws InvalidArgument when Go would reject it. */
export function compileGoRegexp(pattern: string): RegExp {
  let source: string;
  let ignoreCase: boolean;
  try {
    ({ source, ignoreCase } = translate(pattern));
  } catch (err) {
    if (err instanceof GoRegexpError) throw invalidArgument(`error parsing regexp: ${err.message}`);
    throw err;
  }
  try {
    return new RegExp(source, ignoreCase ? 'iu' : 'u');
  } catch (err) {
    // What is left for the engine to reject is what RE2 rejects as well
    // (missing repeat argument, nested repetition, unbalanced parens…).
    const reason = err instanceof Error ? err.message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '') : String(err);
    throw invalidArgument(`error parsing regexp: ${reason}: \`${pattern}\``);
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isAlnum = (c: number) => isDigit(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
const isWordChar = (c: number) => isAlnum(c) || c === 0x5f;
const hexVal = (c: number) =>
  isDigit(c) ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x61 + 10 : c >= 0x41 && c <= 0x46 ? c - 0x41 + 10 : -1;

/** A code point as a literal inside or outside a class, never special. */
function lit(c: number): string {
  if (isAlnum(c) || (c >= 0x80 && c !== 0x2028 && c !== 0x2029)) return String.fromCodePoint(c);
  return `\\u{${c.toString(16)}}`;
}

/** Ranges [lo, hi] inclusive, sorted. */
type Ranges = Array<[number, number]>;

const GO_SPACE: Ranges = [[0x09, 0x0a], [0x0c, 0x0d], [0x20, 0x20]];

const POSIX: Record<string, Ranges> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

function complement(rs: Ranges): Ranges {
  const sorted = [...rs].sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

/**
 * The two non-ASCII code points whose simple case fold is ASCII (ſ → s,
 * Kelvin K → k): under (?i) RE2 negates a class after folding it, so they
 * must leave the complement of a class holding s or k.
 */
function withFolds(rs: Ranges): Ranges {
  const has = (c: number) => rs.some(([lo, hi]) => lo <= c && c <= hi);
  const out = [...rs];
  if (has(0x73) || has(0x53)) out.push([0x17f, 0x17f]);
  if (has(0x6b) || has(0x4b)) out.push([0x212a, 0x212a]);
  return out;
}

const rangesBody = (rs: Ranges) => rs.map(([lo, hi]) => (lo === hi ? lit(lo) : `${lit(lo)}-${lit(hi)}`)).join('');

const GENERAL_CATEGORIES = new Set(
  'C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs'.split(' '),
);

function translate(pattern: string): { source: string; ignoreCase: boolean } {
  const cps = Array.from(pattern, (ch) => ch.codePointAt(0)!);
  const n = cps.length;
  let i = 0;
  let out = '';
  let flags: Flags = { s: false, m: false, U: false };
  let ignoreCase = false;
  const stack: Array<{ flags: Flags; start: number }> = [];
  const peek = (k = 0) => (i + k < n ? cps[i + k] : -1);
  const text = (from: number, to = n) => String.fromCodePoint(...cps.slice(from, to));
  const fail = (msg: string): never => {
    throw new GoRegexpError(msg);
  };

  /** After a quantifier: consume a lazy `?` and emit the greediness Go means. */
  const lazy = () => {
    let nonGreedy = flags.U;
    if (peek() === 0x3f /* ? */) {
      i++;
      nonGreedy = !nonGreedy;
    }
    return nonGreedy ? '?' : '';
  };

  /** Parses `\p` / `\P` (the `p`/`P` at i); returns the JS class escape. */
  const unicodeClass = (): string => {
    const start = i - 1; // the backslash
    let negated = cps[i] === 0x50; /* P */
    i++;
    let name: string;
    if (peek() === 0x7b /* { */) {
      const close = cps.indexOf(0x7d, i);
      if (close < 0) fail(`invalid character class range: \`${text(start)}\``);
      name = text(i + 1, close);
      i = close + 1;
    } else {
      if (i >= n) fail(`invalid character class range: \`${text(start)}\``);
      name = String.fromCodePoint(cps[i++]);
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    if (!/^[A-Za-z_]+$/.test(name)) fail(`invalid character class range: \`${text(start, i)}\``);
    const prop = name === 'Any' ? 'Any' : GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
    try {
      new RegExp(`\\p{${prop}}`, 'u');
    } catch {
      fail(`invalid character class range: \`${text(start, i)}\``);
    }
    return `\\${negated ? 'P' : 'p'}{${prop}}`;
  };

  /**
   * Parses the escape whose backslash is at i-1 (i at the letter) that
   * stands for one code point (shared by classes and top level).
   */
  const singleEscape = (): number => {
    const start = i - 1;
    if (i >= n) fail('trailing backslash at end of expression');
    const c = cps[i++];
    switch (c) {
      case 0x61: return 0x07; // \a
      case 0x66: return 0x0c; // \f
      case 0x74: return 0x09; // \t
      case 0x6e: return 0x0a; // \n
      case 0x72: return 0x0d; // \r
      case 0x76: return 0x0b; // \v
      case 0x78: { // \x
        if (peek() === 0x7b) {
          i++;
          let v = 0;
          let digits = 0;
          while (i < n && cps[i] !== 0x7d) {
            const h = hexVal(cps[i]);
            if (h < 0) fail(`invalid escape sequence: \`${text(start, i + 1)}\``);
            v = v * 16 + h;
            digits++;
            i++;
            if (v > 0x10ffff) fail(`invalid escape sequence: \`${text(start, i)}\``);
          }
          if (i >= n || digits === 0) fail(`invalid escape sequence: \`${text(start, i)}\``);
          i++; // }
          return v;
        }
        const h1 = hexVal(peek()), h2 = hexVal(peek(1));
        if (h1 < 0 || h2 < 0) fail(`invalid escape sequence: \`${text(start, Math.min(n, i + 2))}\``);
        i += 2;
        return h1 * 16 + h2;
      }
    }
    if (c >= 0x30 && c <= 0x37) {
      // \1-\7 alone would be a backreference, which RE2 does not support.
      if (c !== 0x30 && !(peek() >= 0x30 && peek() <= 0x37)) fail(`invalid escape sequence: \`${text(start, i)}\``);
      let v = c - 0x30;
      for (let k = 1; k < 3 && peek() >= 0x30 && peek() <= 0x37; k++) v = v * 8 + (cps[i++] - 0x30);
      return v;
    }
    if (c < 0x80 && !isAlnum(c)) return c; // escaped punctuation is literal
    return fail(`invalid escape sequence: \`${text(start, i)}\``);
  };

  /** Parses a bracket class; i is just past `[`. */
  const parseClass = (): string => {
    const start = i - 1;
    let body = '';
    let negated = false;
    if (peek() === 0x5e /* ^ */) {
      negated = true;
      i++;
    }
    let first = true;
    for (;;) {
      if (i >= n) fail(`missing closing ]: \`${text(start)}\``);
      if (cps[i] === 0x5d /* ] */ && !first) {
        i++;
        break;
      }
      first = false;
      // POSIX [:name:] and [:^name:]
      if (cps[i] === 0x5b && peek(1) === 0x3a) {
        const rest = text(i);
        const m = /^\[:(\^?)([a-z]+):\]/.exec(rest);
        if (m) {
          const rs = POSIX[m[2]];
          if (!rs) fail(`invalid character class range: \`${m[0]}\``);
          body += rangesBody(m[1] ? complement(ignoreCase ? withFolds(rs) : rs) : rs);
          i += m[0].length;
          continue;
        }
      }
      if (cps[i] === 0x5c /* \ */ && i + 1 < n) {
        const e = cps[i + 1];
        if (e === 0x70 || e === 0x50) {
          i += 1;
          body += unicodeClass();
          continue;
        }
        if (e === 0x64 || e === 0x44 || e === 0x77 || e === 0x57) {
          body += `\\${String.fromCodePoint(e)}`;
          i += 2;
          continue;
        }
        if (e === 0x73 || e === 0x53) {
          body += rangesBody(e === 0x73 ? GO_SPACE : complement(GO_SPACE));
          i += 2;
          continue;
        }
      }
      const classChar = (): number => {
        if (i >= n) fail(`missing closing ]: \`${text(start)}\``);
        if (cps[i] === 0x5c) {
          i++;
          return singleEscape();
        }
        return cps[i++];
      };
      const rangeStart = i;
      const lo = classChar();
      let hi = lo;
      if (i + 1 < n && cps[i] === 0x2d /* - */ && cps[i + 1] !== 0x5d) {
        i++;
        hi = classChar();
        if (hi < lo) fail(`invalid character class range: \`${text(rangeStart, i)}\``);
      }
      body += lo === hi ? lit(lo) : `${lit(lo)}-${lit(hi)}`;
    }
    return `[${negated ? '^' : ''}${body}]`;
  };

  /** Parses the flags of `(?flags)` / `(?flags:`; i just past `(?`. Returns true for the `:` form. */
  const parseFlags = (start: number, atStart: boolean): boolean => {
    const next = { ...flags };
    let fold = ignoreCase;
    let sign = 1;
    let sawFlag = false;
    for (;;) {
      if (i >= n) fail(`missing closing ): \`${text(start)}\``);
      const c = cps[i++];
      switch (c) {
        case 0x69: fold = sign > 0; sawFlag = true; break; // i
        case 0x6d: next.m = sign > 0; sawFlag = true; break; // m
        case 0x73: next.s = sign > 0; sawFlag = true; break; // s
        case 0x55: next.U = sign > 0; sawFlag = true; break; // U
        case 0x2d: // -
          if (sign < 0) fail(`invalid or unsupported Perl syntax: \`${text(start, i)}\``);
          sign = -1;
          sawFlag = false;
          break;
        case 0x3a: // :
        case 0x29: { // )
          if (sign < 0 && !sawFlag) fail(`invalid or unsupported Perl syntax: \`${text(start, i)}\``);
          if (fold !== ignoreCase) {
            if (!(atStart && c === 0x29 && fold)) {
              fail(`case-insensitive flag is supported only as (?i) at the start of the pattern: \`${text(start, i)}\``);
            }
            ignoreCase = true;
          }
          flags = next;
          return c === 0x3a;
        }
        default:
          fail(`invalid or unsupported Perl syntax: \`${text(start, i)}\``);
      }
    }
  };

  // The last atom of the current sequence (index into out, -1 when none),
  // whether it is already repeated, and whether a flag group or empty \Q\E
  // came since: RE2 then applies another repeat to the repeated atom
  // (`a*(?s)*` is `(?:a*)*`) instead of rejecting a nested repetition.
  let atomStart = -1;
  let repeated = false;
  let gap = false;
  const atom = (s: string) => {
    atomStart = out.length;
    out += s;
    repeated = false;
    gap = false;
  };
  const repeat = (q: string) => {
    if (repeated && gap && atomStart >= 0) out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)})`;
    out += q;
    repeated = true;
    gap = false;
  };
  const open = (s: string, saved: Flags) => {
    stack.push({ flags: saved, start: out.length });
    out += s;
    atomStart = -1;
    repeated = gap = false;
  };

  while (i < n) {
    const c = cps[i++];
    switch (c) {
      case 0x28: { // (
        const start = i - 1;
        if (peek() !== 0x3f /* ? */) {
          open('(', flags);
          break;
        }
        i++; // ?
        let named = false;
        if (peek() === 0x50 && peek(1) === 0x3c) { // P<
          i += 2;
          named = true;
        } else if (peek() === 0x3c && peek(1) !== 0x3d && peek(1) !== 0x21) { // <name>, not <= <!
          i += 1;
          named = true;
        }
        if (named) {
          const close = cps.indexOf(0x3e /* > */, i);
          if (close < 0) fail(`invalid named capture: \`${text(start)}\``);
          const name = text(i, close);
          if (!name || !cps.slice(i, close).every(isWordChar)) fail(`invalid named capture: \`${text(start, close + 1)}\``);
          i = close + 1;
          open(`(?<${isDigit(name.codePointAt(0)!) ? `g_${name}` : name}>`, flags);
          break;
        }
        const saved = flags;
        if (parseFlags(start, start === 0)) open('(?:', saved);
        else gap = true;
        break;
      }
      case 0x29: { // )
        const top = stack.pop();
        if (!top) fail(`unexpected ): \`${pattern}\``);
        flags = top!.flags;
        out += ')';
        atomStart = top!.start;
        repeated = gap = false;
        break;
      }
      case 0x7c: // |
        out += '|';
        atomStart = -1;
        repeated = gap = false;
        break;
      case 0x2e: // .
        atom(flags.s ? '[\\s\\S]' : '[^\\n]');
        break;
      case 0x5e: // ^
        atom(flags.m ? '(?:(?<![^\\n]))' : '(?:^)');
        break;
      case 0x24: // $
        atom(flags.m ? '(?:(?![^\\n]))' : '(?:$)');
        break;
      case 0x2a: // *
      case 0x2b: // +
      case 0x3f: // ?
        repeat(String.fromCodePoint(c) + lazy());
        break;
      case 0x7b: { // {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(text(i - 1, Math.min(n, i + 24)));
        if (!m) {
          atom(lit(c));
          break;
        }
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
        if (min > MAX_REPEAT || max > MAX_REPEAT || (max >= 0 && max < min)) fail(`invalid repeat count: \`${m[0]}\``);
        i += m[0].length - 1;
        repeat(m[0] + lazy());
        break;
      }
      case 0x5b: // [
        atom(parseClass());
        break;
      case 0x5c: { // \
        if (i >= n) fail('trailing backslash at end of expression');
        const e = cps[i];
        switch (e) {
          case 0x41: i++; atom('(?:(?<![\\s\\S]))'); continue; // \A
          case 0x7a: i++; atom('(?:(?![\\s\\S]))'); continue; // \z
          case 0x62: i++; atom('(?:\\b)'); continue; // \b
          case 0x42: i++; atom('(?:\\B)'); continue; // \B
          case 0x64: case 0x44: case 0x77: case 0x57: // \d \D \w \W
            i++;
            atom(`\\${String.fromCodePoint(e)}`);
            continue;
          case 0x73: i++; atom(`[${rangesBody(GO_SPACE)}]`); continue; // \s
          case 0x53: i++; atom(`[^${rangesBody(GO_SPACE)}]`); continue; // \S
          case 0x70: case 0x50: atom(unicodeClass()); continue; // \p \P
          case 0x51: { // \Q…\E: each character is an atom, so a repeat takes the last
            i++;
            let any = false;
            while (i < n && !(cps[i] === 0x5c && peek(1) === 0x45)) {
              atom(lit(cps[i++]));
              any = true;
            }
            if (i < n) i += 2;
            if (!any) gap = true;
            continue;
          }
        }
        atom(lit(singleEscape()));
        break;
      }
      default:
        atom(lit(c));
    }
  }
  if (stack.length) fail(`missing closing ): \`${pattern}\``);
  return { source: out, ignoreCase };
}
