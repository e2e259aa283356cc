import { silentLogger } from '@sdkit/sd-core';
import { describe, expect, it } from 'vitest';
import type { BackendRequest } from './backend.js';
import { CliError } from './cli-error.js';
import { etcdBackend } from './etcd-backend.js';
import type { CliFlags, CommandName } from './parse-command-line.js';
import { parseTarget } from './parse-target.js';

function request(text: string, flags: CliFlags = {}, command: CommandName = 'ls'): BackendRequest {
  return {
    command,
    target: parseTarget(text, ['etcd', 'etcd+http']),
    flags,
    dialTimeoutMs: undefined,
    env: {},
    readTextFile: () => '',
    logger: silentLogger,
  };
}

async function usage(text: string, flags: CliFlags = {}, command: CommandName = 'ls'): Promise<string> {
  const err = await etcdBackend.prepare(request(text, flags, command)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  expect((err as CliError).kind).toBe('usage');
  return (err as CliError).message;
}

describe('etcd targets', () => {
  it('follow the path as the key prefix, as a gRPC etcd:/// target does, with a trailing / added', async () => {
    const cases: Array<[string, string]> = [
      ['etcd://127.0.0.1:2379/my-service', '"my-service/"'],
      ['etcd://127.0.0.1:2379/my-service/', '"my-service/"'],
      ['etcd://127.0.0.1:2379//services/foo', '"/services/foo/"'],
      ['etcd:///my%20service', '"my service/"'],
      ['etcd+http://h:1/a/b?codec=gokit', '"a/b/"'],
    ];
    for (const [text, prefix] of cases) {
      const prepared = await etcdBackend.prepare(request(text));
      expect(prepared.description).toContain(`keys under ${prefix}`);
    }
    const http = await etcdBackend.prepare(request('etcd+http://h:1/a'));
    expect(http.description).toBe('etcd http://h:1 (HTTP/JSON), keys under "a/"');
  });

  it('point at the other prefix when the set is empty (the leading slash is the likely mistake)', async () => {
    expect((await etcdBackend.prepare(request('etcd://h:2379/services/foo?codec=gokit'))).emptyHint).toBe(
      'for keys under "/services/foo/" write etcd://h:2379//services/foo/?codec=gokit',
    );
    expect((await etcdBackend.prepare(request('etcd:////services/foo'))).emptyHint).toBe(
      'for keys under "services/foo/" write etcd:///services/foo/',
    );
  });

  it('refuse a missing prefix, a prefix starting with //, unknown query parameters and codecs', async () => {
    expect(await usage('etcd://h:2379')).toMatch(/names no key prefix: write etcd:\/\/HOST:PORT\/PREFIX/);
    expect(await usage('etcd://h:2379/')).toMatch(/names no key prefix/);
    expect(await usage('etcd://h:2379///x')).toMatch(/may start with one "\/" only/);
    expect(await usage('etcd:///x?prefix=y')).toMatch(
      /unknown query parameter "prefix"; the only one is codec/,
    );
    expect(await usage('etcd:///x?codec=xml')).toMatch(
      /unknown codec "xml"; the codecs are auto, naming, gokit, json/,
    );
    expect(await usage('etcd:///x?codec=gokit&codec=json')).toMatch(/codec is given twice/);
    expect(await usage('etcd:///x%zz')).toMatch(/malformed percent-encoding/);
  });

  it('refuse --metadata for register with codec=gokit', async () => {
    expect(await usage('etcd:///x?codec=gokit', { metadata: '{}' }, 'register')).toMatch(
      /--metadata cannot be written with codec=gokit/,
    );
    await expect(
      etcdBackend.prepare(request('etcd:///x', { metadata: '{}' }, 'register')),
    ).resolves.toBeDefined();
  });
});
