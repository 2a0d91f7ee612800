import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseNormalizedNamed, parse, parseDockerRef, toString, name, familiarName, familiarString,
  withDefaultTag, withTag, withDigest, parseSpec, specHostname, specRepository, specDigest, specString, splitObject,
} from '../../src/reference/index.js';
import { isInvalidArgument } from '../../src/errdefs/index.js';

const D = 'sha256:' + 'a'.repeat(64);

test('parseNormalizedNamed: good references', () => {
  const table: Array<[string, string, string, string?, string?]> = [
    // input, canonical toString, domain/path, tag, digest
    ['redis', 'docker.io/library/redis', 'docker.io/library/redis'],
    ['redis:7', 'docker.io/library/redis:7', 'docker.io/library/redis', '7'],
    ['library/redis:latest', 'docker.io/library/redis:latest', 'docker.io/library/redis', 'latest'],
    ['docker.io/redis', 'docker.io/library/redis', 'docker.io/library/redis'],
    ['index.docker.io/user/app:v1', 'docker.io/user/app:v1', 'docker.io/user/app', 'v1'],
    ['user/app', 'docker.io/user/app', 'docker.io/user/app'],
    ['localhost/app', 'localhost/app', 'localhost/app'],
    ['localhost:5000/app:1.0', 'localhost:5000/app:1.0', 'localhost:5000/app', '1.0'],
    ['127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000/a/b/c:t', '127.0.0.1:5000/a/b/c', 't'],
    ['quay.io/coreos/etcd@' + D, 'quay.io/coreos/etcd@' + D, 'quay.io/coreos/etcd', undefined, D],
    ['redis:7@' + D, 'docker.io/library/redis:7@' + D, 'docker.io/library/redis', '7', D],
    ['Registry.Example.com/a_b/c.d-e__f:T_1.x-y', 'Registry.Example.com/a_b/c.d-e__f:T_1.x-y', 'Registry.Example.com/a_b/c.d-e__f', 'T_1.x-y'],
    ['a/b---c', 'docker.io/a/b---c', 'docker.io/a/b---c'],
    ['x:' + 't'.repeat(128), 'docker.io/library/x:' + 't'.repeat(128), 'docker.io/library/x', 't'.repeat(128)],
  ];
  for (const [input, canonical, nm, tag, digest] of table) {
    const ref = parseNormalizedNamed(input);
    assert.equal(toString(ref), canonical, input);
    assert.equal(name(ref), nm, input);
    assert.equal(ref.tag, tag, input);
    assert.equal(ref.digest, digest, input);
  }
});

test('parseNormalizedNamed: bad references name the reason', () => {
  const table: Array<[string, RegExp]> = [
    ['', /at least one component/],
    ['Redis', /must be lowercase/],
    ['docker.io/User/app', /must be lowercase/],
    ['redis:' + 't'.repeat(129), /tag must not be more than 128/],
    ['redis:-bad', /invalid tag format/],
    ['redis:a+b', /invalid tag format/],
    ['redis@sha256:abc', /invalid digest format/],
    ['redis@sha256:' + 'A'.repeat(64), /invalid digest format/],
    ['redis@md5:' + 'a'.repeat(32), /invalid digest format.*unsupported/],
    ['redis@sha256:' + 'a'.repeat(63), /invalid digest format/],
    ['a'.repeat(64), /64-byte hexadecimal/],
    ['re$dis', /invalid path component/],
    ['a//b', /empty path component/],
    ['-a/b', /invalid reference/],
    ['host.com:port/a', /invalid domain/],
    ['a/' + 'b'.repeat(260), /must not be more than 255/],
    ['red is', /whitespace/],
    ['redis:', /empty tag/],
  ];
  for (const [input, re] of table) {
    assert.throws(() => parseNormalizedNamed(input), (err: Error) => {
      assert.ok(isInvalidArgument(err), `${input}: ${err}`);
      assert.match(err.message, re, input);
      assert.ok(err.message.includes(JSON.stringify(input)), `message names input: ${err.message}`);
      return true;
    }, input);
  }
});

test('familiar names and default tags', () => {
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/redis:7')), 'redis');
  assert.equal(familiarString(parseNormalizedNamed('docker.io/library/redis:7')), 'redis:7');
  assert.equal(familiarName(parseNormalizedNamed('docker.io/user/app')), 'user/app');
  assert.equal(familiarName(parseNormalizedNamed('docker.io/library/a/b')), 'library/a/b');
  assert.equal(familiarName(parseNormalizedNamed('quay.io/x/y')), 'quay.io/x/y');
  assert.equal(toString(withDefaultTag(parseNormalizedNamed('redis'))), 'docker.io/library/redis:latest');
  assert.equal(toString(withDefaultTag(parseNormalizedNamed('redis@' + D))), 'docker.io/library/redis@' + D);
  assert.equal(toString(parseDockerRef('redis')), 'docker.io/library/redis:latest');
  assert.equal(toString(parseDockerRef('redis:7@' + D)), 'docker.io/library/redis@' + D);
  assert.equal(toString(withTag(parseNormalizedNamed('redis'), 'x')), 'docker.io/library/redis:x');
  assert.equal(toString(withDigest(parseNormalizedNamed('redis:x'), D)), 'docker.io/library/redis:x@' + D);
  assert.throws(() => withTag(parseNormalizedNamed('redis'), '.x'), isInvalidArgument);
  assert.throws(() => withDigest(parseNormalizedNamed('redis'), 'sha256:x'), isInvalidArgument);
});

test('parse (no normalisation)', () => {
  assert.deepEqual(parse('redis:7'), { domain: '', path: 'redis', tag: '7' });
  assert.deepEqual(parse('a/b'), { domain: '', path: 'a/b' });
  assert.deepEqual(parse('example.com/a/b@' + D), { domain: 'example.com', path: 'a/b', digest: D });
  assert.throws(() => parse('A/b'), /lowercase/);
});

test('parseSpec (containerd reference.Spec)', () => {
  const table: Array<[string, string, string, string, string]> = [
    // input, locator, object, hostname, digest
    ['docker.io/library/redis:latest', 'docker.io/library/redis', 'latest', 'docker.io', ''],
    ['localhost:5000/foo/bar@' + D, 'localhost:5000/foo/bar', '@' + D, 'localhost:5000', D],
    ['localhost:5000/foo:tag@' + D, 'localhost:5000/foo', 'tag@' + D, 'localhost:5000', D],
    ['example.com/foo', 'example.com/foo', '', 'example.com', ''],
    ['example.com/foo/../bar:t', 'example.com/bar', 't', 'example.com', ''],
    ['redis', 'redis', '', 'redis', ''],
  ];
  for (const [input, locator, object, host, digest] of table) {
    const spec = parseSpec(input);
    assert.deepEqual(spec, { locator, object }, input);
    assert.equal(specHostname(spec), host);
    assert.equal(specDigest(spec), digest);
  }
  assert.equal(specRepository(parseSpec('localhost:5000/foo/bar:t')), 'foo/bar');
  assert.equal(specString(parseSpec('localhost:5000/foo@' + D)), 'localhost:5000/foo@' + D);
  assert.equal(specString(parseSpec('localhost:5000/foo:t')), 'localhost:5000/foo:t');
  assert.deepEqual(splitObject('t@' + D), { tag: 't', digest: D });
  for (const bad of ['https://example.com/foo', '/foo', 'redis:latest', 'a b/c', 'user@host/x']) {
    assert.throws(() => parseSpec(bad), isInvalidArgument, bad);
  }
});
