import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isInvalidArgument } from '../../src/errdefs/index.js';
import { Always, adaptObject, parse, parseAll, type Adaptor } from '../../src/filters/index.js';
import { compileGoRegexp } from '../../src/filters/goregexp.js';

interface Entry {
  name?: string;
  other?: string;
  labels?: Record<string, string>;
}

// containerd's filter_test.go corpus.
const corpus: Entry[] = [
  { name: 'foo', labels: { foo: 'true' } },
  { name: 'bar' },
  { name: 'foo', labels: { foo: 'present', 'more complex label': 'present' } },
  { name: 'bar', labels: { bar: 'true' } },
  { name: 'fooer', labels: { 'more complex label with \\ and "': 'present' } },
  { name: 'fooer', labels: { 'more complex label with \\ and ".post': 'present' } },
  { name: 'baz', other: 'too complex, yo' },
  { name: 'bazo', other: 'abc' },
  { name: 'compound', labels: { foo: 'omg_asdf.asdf-qwer' } },
];

const adapt = (e: Entry): Adaptor => adaptObject({ name: e.name, other: e.other }, { labels: e.labels });

function select(filter: string | string[]): number[] {
  const f = Array.isArray(filter) ? parseAll(...filter) : parse(filter);
  return corpus.flatMap((e, i) => (f.match(adapt(e)) ? [i] : []));
}

const all = corpus.map((_, i) => i);

test('containerd corpus: selections', () => {
  const cases: Array<[string, number[]]> = [
    ['', all],
    ['name', all],
    ['labels.foo', [0, 2, 8]],
    ['labels.foo,name', [0, 2, 8]],
    ['labels.foo==true', [0]],
    ['labels.foo==omg_asdf.asdf-qwer', [8]],
    ['name==bar', [1, 3]],
    ['name!=bar', [0, 2, 4, 5, 6, 7, 8]],
    ['name==bar,labels.bar', [3]],
    ['other=="too complex, yo"', [6]],
    ['other~=[abc]+,name!=foo', [6, 7]],
    ['other~=/[abc]+/,name!=foo', [6, 7]],
    ['other~=/[abc]{1,2}/,name!=foo', [6, 7]],
    ['other~=/[abc]{0,1}"\\//,name!=foo', []],
    ['name==bar,labels.bar==true', [3]],
    ['name==bar,labels.bar==wrong', []],
    ['name==foo,labels."more complex label"', [2]],
    ['labels."more complex label with \\\\ and \\""==present', [4]],
    ['labels."more complex label with \\\\ and \\"".post==present', [5]],
  ];
  for (const [input, expected] of cases) assert.deepEqual(select(input), expected, input);
});

test('operators: == needs presence, != and ~= see an absent field as ""', () => {
  const a = adaptObject({ name: 'foo' }, { labels: { k: 'v' } });
  const m = (s: string) => parse(s).match(a);
  assert.equal(m('name==foo'), true);
  assert.equal(m('name==fo'), false);
  assert.equal(m('name!=foo'), false);
  assert.equal(m('name!=bar'), true);
  assert.equal(m('missing==x'), false);
  assert.equal(m('missing!=x'), true); // containerd: value "" != "x"
  assert.equal(m('missing!=""'), false); // "" == ""
  assert.equal(m('missing==""'), false); // == requires presence
  assert.equal(m('missing~=^$'), true); // regexp runs on ""
  assert.equal(m('missing~=x'), false);
  assert.equal(m('labels.k==v'), true);
  assert.equal(m('labels.k!=v'), false);
  assert.equal(m('labels.nope!=v'), true);
  assert.equal(m('labels.k~=^v$'), true);
});

test('presence: bare selectors, maps and nested paths', () => {
  const a = adaptObject({ name: 'n', empty: '', size: 0, 'target.digest': 'sha256:abc' }, { labels: { k: 'v', 'a.b': 'c' }, annotations: {} });
  const m = (s: string) => parse(s).match(a);
  assert.equal(m('name'), true);
  assert.equal(m('empty'), false); // "" is absent, as in containerd's adaptors
  assert.equal(m('size'), true);
  assert.equal(m('size==0'), true);
  assert.equal(m('nope'), false);
  assert.equal(m('labels'), false); // a map is not a value
  assert.equal(m('labels.k'), true);
  assert.equal(m('labels.x'), false);
  assert.equal(m('labels.a.b==c'), true); // components after the map join with "."
  assert.equal(m('labels."a.b"==c'), true);
  assert.equal(m('annotations.k'), false);
  assert.equal(m('target.digest==sha256:abc'), true);
  assert.equal(m('target'), false);
  assert.equal(m('name.sub'), false);
});

test('adaptObject: alwaysPresent keeps empty fields present (snapshot parent)', () => {
  const snap = adaptObject({ name: 'k', parent: '', kind: 'committed' }, { labels: {} }, ['name', 'parent', 'kind']);
  assert.equal(parse('parent==""').match(snap), true);
  assert.equal(parse('parent').match(snap), true);
  assert.equal(parse('parent!=""').match(snap), false);
  const img = adaptObject({ name: 'k', parent: '' });
  assert.equal(parse('parent==""').match(img), false);
  assert.equal(parse('parent').match(img), false);
});

test('AND with commas, OR across filter strings', () => {
  assert.deepEqual(select('name==foo,labels.foo==true'), [0]);
  assert.deepEqual(select(['name==bar', 'name==baz']), [1, 3, 6]);
  assert.deepEqual(select(['name==bar,labels.bar', 'other==abc']), [3, 7]);
  assert.deepEqual(select(['name==nothing', 'labels.foo==present']), [2]);
  assert.deepEqual(select(['name==nothing']), []);
  assert.equal(parseAll(), Always);
  assert.equal(parseAll(''), Always);
  assert.equal(parseAll('', ''), Always);
  assert.deepEqual(select(['', 'name==nothing']), all); // "" matches everything
  assert.equal(parse(''), Always);
});

test('quoting of fields and values', () => {
  const a = adaptObject(
    { name: 'a b,c', 'x y': 'z', pipe: 'a|b', tab: 'a\tb', uni: 'é', q: "'x'" },
    { labels: { 'containerd.io/gc.root': 'yes', 'ns/key': 'v', 'a-b': '1', 'é': 'u' } },
  );
  const m = (s: string) => parse(s).match(a);
  assert.equal(m('name=="a b,c"'), true);
  assert.equal(m('"x y"==z'), true);
  assert.equal(m('labels."containerd.io/gc.root"==yes'), true);
  assert.equal(m('labels."ns/key"'), true);
  assert.equal(m('labels."a-b"==1'), true);
  assert.equal(m('labels."é"==u'), true);
  assert.equal(m('labels."\\u00e9"==u'), true);
  assert.equal(m('tab=="a\\tb"'), true);
  assert.equal(m('uni=="\\xc3\\xa9"'), true); // raw bytes decoded as UTF-8
  assert.equal(m('uni=="\\303\\251"'), true);
  assert.equal(m('uni=="\\U000000e9"'), true);
  assert.equal(m('uni==é'), true); // bare values take any printable character
  assert.equal(m('pipe==a|b'), true); // | inside a bare value is literal
  assert.equal(m("q=='x'"), true); // single quotes are not quotes
  // Regexp values may use /…/ and |…| and then hold , " and spaces.
  assert.equal(m('name~=/b,c$/'), true);
  assert.equal(m('name~=|^a b|'), true);
  assert.equal(m('pipe~=/^a\\\\|b$/'), true); // \\ unquotes to \, so the regexp is ^a\|b$
  assert.equal(m('pipe~=/^a|zzz$/'), true); // | is plain inside /…/: alternation
  assert.equal(m('pipe~=|^a\\|b$|'), true); // inside |…| quotes, \| unquotes to |: alternation
  assert.equal(m('name~=/a\\/b/'), false); // \/ unquotes to /
  assert.equal(m('name~="a b"'), true);
  // Spaces between tokens are skipped.
  assert.equal(m('  name  ==  "a b,c"'), true);
  assert.equal(m('labels."a-b"==1, name'), true);
});

test('regexp: Go syntax and partial matching', () => {
  const a = adaptObject({ name: 'docker.io/library/alpine:3.18', multi: 'one\ntwo', dig: '12ab' });
  const m = (s: string) => parse(s).match(a);
  assert.equal(m('name~=alpine'), true); // partial match
  assert.equal(m('name~=^alpine'), false);
  assert.equal(m('name~=alpine:3\\.18$'), true); // a bare value keeps its backslashes
  assert.equal(m('name~="alpine:3\\\\.18$"'), true);
  assert.equal(m('name~=(?i)ALPINE'), true);
  assert.equal(m('name~=ALPINE'), false);
  assert.equal(m('name~=[[:digit:]]+\\.[[:digit:]]'), true);
  assert.equal(m('name~=:[[:alpha:]]'), false);
  assert.equal(m('name~=/library\\/alp/'), true); // \/ is a / inside /…/
  assert.equal(m('dig~=^[[:xdigit:]]+$'), true);
  assert.equal(m('multi~=^two'), false); // ^ is start of text without (?m)
  assert.equal(m('multi~=(?m)^two$'), true);
  assert.equal(m('multi~=one.two'), false); // . skips \n without (?s)
  assert.equal(m('multi~=(?s)one.two'), true);
  assert.equal(m('name~=(?P<repo>library)/'), true);
  assert.equal(m('name~=a{1000}'), false);
});

test('goregexp: translation matches Go semantics', () => {
  const yes = (p: string, s: string) => assert.equal(compileGoRegexp(p).test(s), true, `${p} should match ${JSON.stringify(s)}`);
  const no = (p: string, s: string) => assert.equal(compileGoRegexp(p).test(s), false, `${p} should not match ${JSON.stringify(s)}`);
  yes('\\s', ' ');
  no('\\s', '\v'); // Go's \s is [\t\n\f\r ]
  no('\\s', '\u00a0');
  yes('\\S', '\u00a0');
  yes('[\\s]', '\t');
  no('[^\\s]', '\n');
  yes('.', '\r');
  no('^.$', '\n');
  yes('(?s)^.$', '\n');
  yes('(?s:.)', '\n');
  no('a(?s:.)b.c', 'a\nb\nc'); // (?s:…) is scoped to its group
  yes('\\Qa.b*\\E', 'xa.b*y');
  no('\\Qa.b\\E', 'axb');
  yes('a{,5}', 'a{,5}'); // not a repeat: literal
  yes('{', '{');
  yes('}', '}');
  yes('[]a]', ']');
  yes('[^]a]', 'b');
  no('[^]a]', ']');
  yes('[a-]', '-');
  yes('[\\d-z]', '-'); // - after a class is literal
  yes('\\x41\\x{42}\\103', 'ABC');
  yes('\\0', '\0');
  yes('\\a', '\x07');
  yes('\\pL', 'é');
  no('\\PL', 'é');
  yes('\\p{Greek}', 'λ');
  no('\\p{^Greek}', 'λ');
  yes('[\\p{Lu}\\d]', '7');
  yes('[[:^alpha:]]', '1');
  no('[[:^alpha:]]', 'a');
  yes('[[:word:]]', '_');
  yes('\\Aab\\z', 'ab');
  no('\\Aab\\z', 'ab\n');
  no('ab$', 'ab\n'); // $ is end of text, not before a final \n
  yes('(?m)ab$', 'ab\n');
  no('(?m)^b', 'a\rb'); // only \n separates lines
  yes('\\bfoo\\b', 'a foo b');
  yes('\\-\\#\\_', '-#_'); // escaped punctuation is literal
  yes('(?U)a+', 'a');
  yes('a*?', '');
  yes('^*a', 'a');
  yes('(?i)straße', 'STRASSE'.toLowerCase().replace('ss', 'ß'));
  yes('(?i)[a-c]', 'B');
  no('(?i)[[:^alpha:]]', '\u017f'); // ſ folds to s: RE2 negates after folding
  yes('(?i)[[:^alpha:]]', '1');
  yes('a*(?s)*b', 'b'); // a repeat after a flag group repeats the repeated atom
  yes('\\Qab\\E*', 'a');
  assert.equal(compileGoRegexp('(?U)a+').exec('aaa')![0], 'a');
  assert.equal(compileGoRegexp('(?U)a+?').exec('aaa')![0], 'aaa');
  assert.equal(compileGoRegexp('a+?').exec('aaa')![0], 'a');
});

test('goregexp: rejects what RE2 rejects', () => {
  for (const p of [
    '(', ')', 'a)', '[a', '[z-a]', '*', 'a**', 'a{2}{3}', '+a', 'x{1001}', 'x{2,1}', '\\1', '\\k<a>', '\\C', '\\y', '\\',
    '(?=a)', '(?!a)', '(?<=a)', '(?<!a)', '(?#c)', '(?x)', '(?i-)', '(?-)', '(?P<>a)', '(?P<a-b>a)', '(?P<a>x)(?P<a>y)',
    '\\p{Nope}', '\\pX', '\\x{110000}', '\\xZ1', '[[:nope:]]', '[\\b]', '[\\A]', '[a-\\d]', 'a(?i)b', '(?i:a)',
  ]) {
    assert.throws(() => compileGoRegexp(p), (e: unknown) => isInvalidArgument(e), p);
  }
});

test('bad filters are InvalidArgument and point at the error', () => {
  const cases: Array<[string, string | RegExp]> = [
    ['name==', 'filters: parse error: [name==]: expected value or quoted: invalid argument'],
    ['==x', 'filters: parse error: [ >|=|< =x]: expected field or quoted: invalid argument'],
    ['name=x', 'filters: parse error: [name >|=|< x]: unsupported operator "=": invalid argument'],
    ['name===x', /unsupported operator "==="/],
    ['name!x', /unsupported operator "!"/],
    ['name~x', /unsupported operator "~"/],
    ['name==!x', /unsupported operator "==!"/],
    ['labels.', 'filters: parse error: [labels.]: expected field or quoted: invalid argument'],
    ['name==foo,', 'filters: parse error: [name==foo,]: expected field or quoted: invalid argument'],
    [',name', /\[ >\|,\|< name\]: expected field or quoted/],
    ['name,,x', /expected field or quoted/],
    ['labels..a', /expected field or quoted/],
    ['labels.|foo|==omg_asdf.asdf-qwer', 'filters: parse error: [labels. >|||< foo|==omg_asdf.asdf-qwer]: invalid quote encountered: invalid argument'],
    ['labels./foo/==x', /invalid quote encountered/],
    ['name==/foo/', /invalid quote encountered/], // /…/ only for ~=
    ['name==|foo|', /invalid quote encountered/],
    ['labels.?"more complex label with \\\\ and \\"".post==present', /\[labels\. >\|\?\|< .*\]: expected field or quoted/],
    ['image~=,id?=?fbaq', 'filters: parse error: [image~= >|,|< id?=?fbaq]: expected value or quoted: invalid argument'],
    ['labels.ns/key==value', 'filters: parse error: [labels.ns >|/|< key==value]: quoted literal not terminated: invalid argument'],
    ['labels.key==/value', 'filters: parse error: [labels.key== >|/|< value]: quoted literal not terminated: invalid argument'],
    ['name=="foo', /quoted literal not terminated/],
    ['"name==foo', /quoted literal not terminated/],
    ['name=="a\nb"', /quoted literal not terminated/],
    ['name=="\\q"', /illegal escape sequence/],
    ['name=="\\xZZ"', /illegal numeric escape sequence/],
    ['name=="\\400"', /unquoting failed/], // octal above 255
    ['name=="\\U00110000"', /unquoting failed/],
    ['name==.x', /expected value or quoted/], // a bare value cannot start with .
    ['name==,', /expected value or quoted/],
    ['name ', /expected an operator/],
    ['name==foo ', /unexpected input/],
    ['name==foo bar', /unexpected input/],
    ['name foo', /expected an operator/],
    ['name=="x"y', /unexpected input: y/],
    ['labels.a-b==1', /\[labels\.a >\|-\|< b==1\]: expected an operator/],
    ['labels.é', /expected field or quoted/],
    ["'name'==x", /expected field or quoted/],
    ['na\u0000me', /unexpected null/],
    ['name~=(', /error parsing regexp: missing closing \)/],
    ['name~=[a', /missing closing \]/],
    ['name~=a**', /error parsing regexp/],
    ['name~=(?=x)', /invalid or unsupported Perl syntax/],
    ['name~="\\\\1"', /invalid escape sequence/],
    ['name~=x{1001}', /invalid repeat count/],
    // Syntax errors are found before a bad regexp, as containerd reports them.
    ['name~=(,x ', 'filters: parse error: [name~=(,x ]: expected an operator ("=="|"!="|"~="): invalid argument'],
    ['name~=(,x', 'filters: parse error: [name~= >|(|< ,x]: error parsing regexp: missing closing ): `(`: invalid argument'],
  ];
  for (const [input, expected] of cases) {
    assert.throws(
      () => parse(input),
      (err: unknown) => {
        assert.ok(isInvalidArgument(err), `${JSON.stringify(input)}: not InvalidArgument: ${err}`);
        const msg = (err as Error).message;
        if (typeof expected === 'string') assert.equal(msg, expected, JSON.stringify(input));
        else assert.match(msg, expected, JSON.stringify(input));
        return true;
      },
      JSON.stringify(input),
    );
    assert.throws(() => parseAll('name', input), (e: unknown) => isInvalidArgument(e), JSON.stringify(input));
  }
});
