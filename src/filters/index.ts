/**
 * filters: containerd's filter language, shared by every store's List/Walk.
 *
 * A filter is a comma separated list of selectors, all of which must match
 * (AND); several filter strings given together match when any one does (OR):
 *
 *     selectors := selector ("," selector)*
 *     selector  := fieldpath [operator value]
 *     fieldpath := field ("." field)*
 *     field     := [A-Za-z0-9_]+ | "double quoted"
 *     operator  := "==" | "!=" | "~="
 *     value     := bare | "double quoted" | /slash quoted/ | |pipe quoted|
 *
 * A selector without operator tests presence (`labels.foo`). Field paths
 * follow protobuf field paths; quoting a component lets it hold anything,
 * which labels need (`labels."containerd.io/gc.root"`). Store adaptors join
 * the components after `labels` with "." to look a key up, so
 * `labels.a.b` and `labels."a.b"` are the same key.
 *
 * `==` needs the field present and equal; `!=` compares the field's value,
 * an absent field counting as "", so `name!=x` matches objects without a
 * name; `~=` is a Go regexp (RE2 syntax, see goregexp.ts) that must match
 * somewhere in the value (again "" when absent). `/…/` and `|…|` quotes are
 * only allowed for `~=` values, so a regexp can hold `,` and `"` unescaped.
 * Quoted strings take Go escapes (`\\`, `\"`, `\n`, `\x41`, `\u00e9`, …).
 *
 * Bare values run to the next `,` or space and may hold any printable
 * characters (`labels.v==omg_asdf.asdf-qwer`), but cannot start with one of
 * `. , = ! ~ / | "`. Bare fields hold only letters, digits and `_`, so a key
 * like `ns/key` or `a-b` must be quoted. Spaces may stand between tokens,
 * but not after a value or at the end. Single quotes are not quotes (as in
 * containerd): `name=='x'` compares with the three characters `'x'`.
 *
 * Every syntax error is InvalidArgument, with a message pointing at the
 * offending character: `filters: parse error: [name >|=|< x]: …`. Unlike
 * containerd (which logs and fails the match), a `~=` value that is not a
 * valid regexp is a parse error too.
 */

import { invalidArgument } from '../errdefs/index.js';
import { compileGoRegexp } from './goregexp.js';

/** Returns the value at a field path, or undefined when the field is absent. */
export type Adaptor = (fieldpath: string[]) => string | undefined;

export interface Filter {
  match(a: Adaptor): boolean;
}

/** Matches everything (the empty filter). */
export const Always: Filter = Object.freeze({ match: () => true });

type Operator = '?' | '==' | '!=' | '~=';

class Selector implements Filter {
  re?: RegExp; // compiled once the whole filter has parsed

  constructor(
    readonly fieldpath: string[],
    readonly operator: Operator,
    readonly value: string,
    readonly pos = 0, // where the value starts, for errors
  ) {}

  match(a: Adaptor): boolean {
    const v = a(this.fieldpath);
    switch (this.operator) {
      case '?':
        return v !== undefined;
      case '==':
        return v !== undefined && v === this.value;
      case '!=':
        return (v ?? '') !== this.value;
      case '~=':
        return this.re!.test(v ?? '');
    }
  }
}

class AllOf implements Filter {
  constructor(readonly filters: Filter[]) {}
  match(a: Adaptor): boolean {
    return this.filters.every((f) => f.match(a));
  }
}

class AnyOf implements Filter {
  constructor(readonly filters: Filter[]) {}
  match(a: Adaptor): boolean {
    return this.filters.some((f) => f.match(a));
  }
}

/** Parses one filter string; "" matches everything. Throws InvalidArgument on bad syntax. */
export function parse(s: string): Filter {
  if (s === '') return Always;
  return new Parser(s).parse();
}

/** Parses several filters into one that matches when any of them does; none → Always. */
export function parseAll(...ss: string[]): Filter {
  if (ss.length === 0) return Always;
  const fs = ss.map(parse);
  // An empty filter string matches everything, and so does any OR holding one.
  if (fs.includes(Always)) return Always;
  return fs.length === 1 ? fs[0] : new AnyOf(fs);
}

/**
 * Adaptor over a plain record, following containerd's store adaptors:
 * - `fields` holds scalar fields by name; a nested scalar is keyed by its
 *   dotted path (`{ 'target.digest': d }`). undefined or "" is absent,
 *   except "" for the fields named in `alwaysPresent` (containerd's snapshot
 *   adaptor reports `name` and `parent` even when empty, so that
 *   `parent==""` finds snapshots without parent).
 * - `maps` holds map fields (labels, annotations): the path components after
 *   the map's name, joined with ".", are the key. An empty map has no keys.
 */
export function adaptObject(
  fields: Record<string, string | number | undefined>,
  maps?: Record<string, Record<string, string> | undefined>,
  alwaysPresent?: readonly string[],
): Adaptor {
  return (fieldpath) => {
    if (fieldpath.length === 0) return undefined;
    if (maps && Object.hasOwn(maps, fieldpath[0])) {
      const m = maps[fieldpath[0]];
      if (!m || fieldpath.length < 2) return undefined;
      const key = fieldpath.slice(1).join('.');
      return Object.hasOwn(m, key) ? m[key] : undefined;
    }
    const key = fieldpath.join('.');
    if (!Object.hasOwn(fields, key)) return undefined;
    const v = fields[key];
    if (v === undefined || (v === '' && !alwaysPresent?.includes(key))) return undefined;
    return typeof v === 'number' ? String(v) : v;
  };
}

// ---- scanner ---------------------------------------------------------------

const tEOF = -1;
const tQuoted = -2;
const tValue = -3;
const tField = -4;
const tSeparator = -5;
const tOperator = -6;
const tIllegal = -7;

const isFieldRune = (c: number) =>
  c === 0x5f || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39);
const isOperatorRune = (c: number) => c === 0x3d || c === 0x21 || c === 0x7e; // = ! ~
const isQuoteRune = (c: number) => c === 0x2f || c === 0x7c || c === 0x22; // / | "
const isSeparatorRune = (c: number) => c === 0x2c || c === 0x2e; // , .
const SPACE = /^\p{White_Space}$/u; // Go's unicode.IsSpace
const GRAPHIC = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u; // Go's IsGraphic minus spaces
const isSpace = (c: number) => c >= 0 && SPACE.test(String.fromCodePoint(c));
const isValueRune = (c: number) => c >= 0 && c !== 0x2c && !isSpace(c) && GRAPHIC.test(String.fromCodePoint(c));

function digitVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return 16;
}

interface Token {
  pos: number;
  tok: number;
  text: string;
}

/**
 * Tokenizer: positions are string indices. After an operator the next
 * non-quoted token is a value (anything printable up to `,` or space).
 */
class Scanner {
  pos = 0; // start of the current rune
  ppos = 0; // end of the current rune
  value = false;
  err = '';

  constructor(readonly input: string) {}

  next(): number {
    if (this.ppos >= this.input.length) {
      this.pos = this.input.length;
      return tEOF;
    }
    this.pos = this.ppos;
    const c = this.input.codePointAt(this.ppos)!;
    this.ppos += c > 0xffff ? 2 : 1;
    if (c >= 0xd800 && c <= 0xdfff) {
      this.error('rune error');
      return tIllegal;
    }
    if (c === 0) {
      this.error('unexpected null');
      return tIllegal;
    }
    return c;
  }

  peek(): number {
    const { pos, ppos } = this;
    const c = this.next();
    this.pos = pos;
    this.ppos = ppos;
    return c;
  }

  scan(): Token {
    let ch = this.next();
    let pos = this.pos;
    for (;;) {
      if (ch === tEOF || ch === tIllegal) break;
      if (isQuoteRune(ch)) {
        const ok = this.scanQuoted(ch);
        return { pos, tok: ok ? tQuoted : tIllegal, text: this.input.slice(pos, this.ppos) };
      }
      if (isSeparatorRune(ch)) {
        this.value = false;
        return { pos, tok: tSeparator, text: this.input.slice(pos, this.ppos) };
      }
      if (isOperatorRune(ch)) {
        while (isOperatorRune(this.peek())) this.next();
        this.value = true;
        return { pos, tok: tOperator, text: this.input.slice(pos, this.ppos) };
      }
      if (isSpace(ch)) {
        ch = this.next();
        pos = this.pos;
        continue;
      }
      if (this.value) {
        while (isValueRune(this.peek())) this.next();
        this.value = false;
        return { pos, tok: tValue, text: this.input.slice(pos, this.ppos) };
      }
      if (isFieldRune(ch)) {
        while (isFieldRune(this.peek())) this.next();
        return { pos, tok: tField, text: this.input.slice(pos, this.ppos) };
      }
      break;
    }
    return { pos: this.pos, tok: ch, text: '' };
  }

  /** Consumes a quoted literal up to its closing quote, checking escapes. */
  private scanQuoted(quote: number): boolean {
    let illegal = false;
    let ch = this.next();
    while (ch !== quote) {
      if (ch === 0x0a || ch < 0) {
        this.error('quoted literal not terminated');
        return false;
      }
      if (ch === 0x5c) {
        let legal: boolean;
        [ch, legal] = this.scanEscape(quote);
        if (!legal) illegal = true;
      } else {
        ch = this.next();
      }
    }
    return !illegal;
  }

  private scanEscape(quote: number): [number, boolean] {
    const ch = this.next();
    switch (ch) {
      case 0x61: case 0x62: case 0x66: case 0x6e: case 0x72: case 0x74: case 0x76: case 0x5c: case quote:
        return [this.next(), true];
      case 0x78:
        return this.scanDigits(this.next(), 16, 2);
      case 0x75:
        return this.scanDigits(this.next(), 16, 4);
      case 0x55:
        return this.scanDigits(this.next(), 16, 8);
    }
    if (ch >= 0x30 && ch <= 0x37) return this.scanDigits(ch, 8, 3);
    this.error('illegal escape sequence');
    return [ch, false];
  }

  private scanDigits(ch: number, base: number, n: number): [number, boolean] {
    while (n > 0 && digitVal(ch) < base) {
      ch = this.next();
      n--;
    }
    if (n > 0) {
      this.error('illegal numeric escape sequence');
      return [ch, false];
    }
    return [ch, true];
  }

  private error(msg: string): void {
    if (!this.err) this.err = msg;
  }
}

// ---- unquoting (Go strconv.Unquote, with / and | as double quotes) ----------

class QuoteSyntaxError extends Error {}

function unquote(s: string): string {
  // The scanner only produces literals quoted with " / or |.
  const quote = s[0];
  if (s.length < 2 || quote !== s[s.length - 1] || !'"|/'.includes(quote)) throw new QuoteSyntaxError('invalid syntax');
  const body = s.slice(1, -1);
  if (body.includes('\n')) throw new QuoteSyntaxError('invalid syntax');
  if (!body.includes('\\') && !body.includes(quote)) return body;

  // Escapes may produce raw bytes (\xff, \377): collect UTF-8 and decode at the end.
  const bytes: number[] = [];
  const pushString = (str: string) => bytes.push(...Buffer.from(str, 'utf8'));
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 0x5c };
  let i = 0;
  while (i < body.length) {
    const c = body[i];
    if (c === quote) throw new QuoteSyntaxError('invalid syntax');
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      pushString(String.fromCodePoint(cp));
      i += cp > 0xffff ? 2 : 1;
      continue;
    }
    if (i + 1 >= body.length) throw new QuoteSyntaxError('invalid syntax');
    const e = body[i + 1];
    i += 2;
    if (Object.hasOwn(simple, e)) {
      bytes.push(simple[e]);
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i, i + len);
      if (hex.length < len || !/^[0-9a-fA-F]+$/.test(hex)) throw new QuoteSyntaxError('invalid syntax');
      const v = parseInt(hex, 16);
      i += len;
      if (e === 'x') bytes.push(v);
      else if (v > 0x10ffff) throw new QuoteSyntaxError('invalid syntax');
      else pushString(String.fromCodePoint(v));
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(oct)) throw new QuoteSyntaxError('invalid syntax');
      const v = parseInt(oct, 8);
      if (v > 255) throw new QuoteSyntaxError('invalid syntax');
      bytes.push(v);
      i += 2;
    } else if (e === quote) {
      bytes.push(e.charCodeAt(0));
    } else {
      throw new QuoteSyntaxError('invalid syntax');
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

// ---- parser ----------------------------------------------------------------

class Parser {
  private readonly scanner: Scanner;

  constructor(private readonly input: string) {
    this.scanner = new Scanner(input);
  }

  parse(): Filter {
    const ss = this.selectors();
    // Regexps are compiled last, so syntax errors are reported as containerd does.
    for (const s of ss) {
      if (s.operator !== '~=') continue;
      try {
        s.re = compileGoRegexp(s.value);
      } catch (err) {
        const reason = err instanceof Error ? err.message.replace(/: invalid argument$/, '') : String(err);
        throw this.mkerr(s.pos, reason);
      }
    }
    return ss.length === 1 ? ss[0] : new AllOf(ss);
  }

  private selectors(): Selector[] {
    const ss = [this.selector()];
    for (;;) {
      const tok = this.scanner.peek();
      if (tok === 0x2c /* , */) {
        const { pos, tok } = this.scanner.scan();
        if (tok !== tSeparator) throw this.mkerr(pos, 'expected a separator');
        ss.push(this.selector());
      } else if (tok === tEOF) {
        return ss;
      } else {
        const ch = tok < 0 ? '\ufffd' : String.fromCodePoint(tok);
        throw this.mkerr(this.scanner.ppos, `unexpected input: ${ch}`);
      }
    }
  }

  private selector(): Selector {
    const fieldpath = this.fieldpath();
    const next = this.scanner.peek();
    if (next === 0x2c || next === tEOF) return new Selector(fieldpath, '?', '');
    const op = this.operator();
    const { pos, value } = this.value(op === '~=');
    return new Selector(fieldpath, op, value, pos);
  }

  private fieldpath(): string[] {
    const fs = [this.field()];
    while (this.scanner.peek() === 0x2e /* . */) {
      const { pos, tok } = this.scanner.scan();
      if (tok !== tSeparator) throw this.mkerr(pos, 'expected a field separator (`.`)');
      fs.push(this.field());
    }
    return fs;
  }

  private field(): string {
    const { pos, tok, text } = this.scanner.scan();
    switch (tok) {
      case tField:
        return text;
      case tQuoted:
        return this.unquote(pos, text, false);
      case tIllegal:
        throw this.mkerr(pos, this.scanner.err);
    }
    throw this.mkerr(pos, 'expected field or quoted');
  }

  private operator(): Operator {
    const { pos, tok, text } = this.scanner.scan();
    if (tok === tOperator) {
      if (text === '==' || text === '!=' || text === '~=') return text;
      throw this.mkerr(pos, `unsupported operator ${JSON.stringify(text)}`);
    }
    if (tok === tIllegal) throw this.mkerr(pos, this.scanner.err);
    throw this.mkerr(pos, 'expected an operator ("=="|"!="|"~=")');
  }

  private value(allowAltQuotes: boolean): { pos: number; value: string } {
    const { pos, tok, text } = this.scanner.scan();
    switch (tok) {
      case tValue:
      case tField:
        return { pos, value: text };
      case tQuoted:
        return { pos, value: this.unquote(pos, text, allowAltQuotes) };
      case tIllegal:
        throw this.mkerr(pos, this.scanner.err);
    }
    throw this.mkerr(pos, 'expected value or quoted');
  }

  private unquote(pos: number, s: string, allowAlts: boolean): string {
    if (!allowAlts && s[0] !== "'" && s[0] !== '"') throw this.mkerr(pos, 'invalid quote encountered');
    try {
      return unquote(s);
    } catch (err) {
      if (err instanceof QuoteSyntaxError) throw this.mkerr(pos, `unquoting failed: ${err.message}`);
      throw err;
    }
  }

  /** InvalidArgument pointing at pos: `[before >|c|< after]: msg`. */
  private mkerr(pos: number, msg: string): Error {
    const input = this.input;
    let where: string;
    if (pos < input.length) {
      const cp = input.codePointAt(pos)!;
      const end = pos + (cp > 0xffff ? 2 : 1);
      where = `[${input.slice(0, pos)} >|${input.slice(pos, end)}|< ${input.slice(end)}]`;
    } else {
      where = `[${input}]`;
    }
    return invalidArgument(`filters: parse error: ${where}: ${msg}`);
  }
}
