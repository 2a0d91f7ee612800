/**
 * Docker client config credentials: auths (auth / username+password /
 * identitytoken), Docker Hub key mapping, credHelpers and credsStore via a
 * fake docker-credential-* helper on PATH, DOCKER_CONFIG.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdir, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { dockerCredentials, dockerConfigDir, DOCKER_HUB_AUTH_KEY } from '../../src/remotes/docker/index.js';
import { isUnavailable, isInvalidArgument } from '../../src/errdefs/index.js';
import { tempDir } from '../util/tmp.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('auths entries and docker hub mapping', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      auths: {
        [DOCKER_HUB_AUTH_KEY]: { auth: b64('hubuser:hub:pass') },
        'https://registry.example.com:5000/v1/': { auth: b64('a:b') },
        'plain.example': { username: 'u', password: 'p' },
        'tok.example': { identitytoken: 'refresh-me' },
        'empty.example': {},
      },
    }));
    const creds = dockerCredentials({ configDir: dir });
    assert.deepEqual(await creds('registry-1.docker.io'), { username: 'hubuser', password: 'hub:pass' });
    assert.deepEqual(await creds('docker.io'), { username: 'hubuser', password: 'hub:pass' });
    assert.deepEqual(await creds('registry.example.com:5000'), { username: 'a', password: 'b' });
    assert.deepEqual(await creds('plain.example'), { username: 'u', password: 'p' });
    assert.deepEqual(await creds('tok.example'), { username: '', password: 'refresh-me' });
    assert.equal(await creds('empty.example'), undefined);
    assert.equal(await creds('registry.example.com'), undefined);

    const none = dockerCredentials({ configDir: join(dir, 'absent') });
    assert.equal(await none('docker.io'), undefined);

    await writeFile(join(dir, 'config.json'), '{not json');
    await assert.rejects(Promise.resolve(dockerCredentials({ configDir: dir })('x')), isInvalidArgument);
  } finally {
    await cleanup();
  }
  assert.equal(dockerConfigDir({ DOCKER_CONFIG: '/custom' }), '/custom');
});

test('credential helpers: credHelpers per host, credsStore for the rest, "not found" falls back to auths', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const bin = join(dir, 'bin');
    await mkdir(bin);
    // a helper that answers from its name and the server read on stdin
    const helper = (name: string) => `#!/bin/sh
[ "$1" = get ] || exit 3
read server
case "$server" in
  *missing*) echo "credentials not found in native keychain"; exit 1 ;;
  *broken*) echo "helper exploded" >&2; exit 2 ;;
  *token*) printf '{"ServerURL":"%s","Username":"<token>","Secret":"idtok"}' "$server" ;;
  *) printf '{"ServerURL":"%s","Username":"${name}-user","Secret":"%s-secret"}' "$server" "$server" ;;
esac
`;
    for (const n of ['store', 'special']) {
      await writeFile(join(bin, `docker-credential-${n}`), helper(n));
      await chmod(join(bin, `docker-credential-${n}`), 0o755);
    }
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      credsStore: 'store',
      credHelpers: { 'special.example': 'special' },
      auths: { 'missing.example': { auth: b64('fallback:pw') } },
    }));
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const creds = dockerCredentials({ env, configDir: dir });
    assert.deepEqual(await creds('special.example'), { username: 'special-user', password: 'special.example-secret' });
    assert.deepEqual(await creds('other.example'), { username: 'store-user', password: 'other.example-secret' });
    assert.deepEqual(await creds('docker.io'), { username: 'store-user', password: `${DOCKER_HUB_AUTH_KEY}-secret` });
    assert.deepEqual(await creds('token.example'), { username: '', password: 'idtok' });
    assert.deepEqual(await creds('missing.example'), { username: 'fallback', password: 'pw' });
    await assert.rejects(Promise.resolve(creds('broken.example')), (e: Error) => isUnavailable(e) && /helper exploded/.test(e.message));

    // DOCKER_CONFIG in the environment selects the directory
    const viaEnv = dockerCredentials({ env: { ...env, DOCKER_CONFIG: dir } });
    assert.deepEqual(await viaEnv('x.example'), { username: 'store-user', password: 'x.example-secret' });

    const noHelper = dockerCredentials({ configDir: dir, env: { PATH: '/nonexistent' } });
    await assert.rejects(Promise.resolve(noHelper('x.example')), (e: Error) => isUnavailable(e) && /docker-credential-store/.test(e.message));
  } finally {
    await cleanup();
  }
});
