/**
 * `sdkit` against a real etcd, over both transports (etcd:// is gRPC, etcd+http:// the HTTP/JSON gateway), as a
 * plain child process: output, exit status, and that it exits by itself promptly.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type EtcdServer,
  eventually,
  makeTempDir,
  startEtcd,
  startTlsEtcdPair,
  type TempDir,
  type TlsEtcdPair,
} from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, sdkit, startSdkit } from './fixtures/sdkit-process.js';

let server: EtcdServer;
/** `127.0.0.1:PORT` */
let host: string;

beforeAll(async () => {
  server = await startEtcd({ name: 'cli' });
  host = server.endpoints[0]!.replace(/^https?:\/\//, '');
});
afterAll(() => server?.close());

const put = (key: string, value: string) => server.etcdctl('put', key, value);
async function get(key: string): Promise<string | undefined> {
  const { stdout } = await server.etcdctl('get', key, '--print-value-only');
  return stdout === '' ? undefined : stdout.replace(/\n$/, '');
}
const naming = (addr: string, metadata: unknown = null) =>
  JSON.stringify({ Op: 0, Addr: addr, Metadata: metadata });

describe.each([
  { scheme: 'etcd', transport: 'gRPC' },
  { scheme: 'etcd+http', transport: 'HTTP/JSON' },
])('sdkit on $scheme:// ($transport)', ({ scheme }) => {
  const t = (path: string) => `${scheme}://${host}/${path}`;
  const svc = (name: string) => `${scheme.replace('+', '-')}-${name}`;

  it('ls prints the etcd naming layout (my-service/ADDR) as a table and as JSON; exit 0', async () => {
    const name = svc('ls');
    await put(`${name}/10.0.0.2:50051`, naming('10.0.0.2:50051'));
    await put(`${name}/10.0.0.1:50051`, naming('10.0.0.1:50051', { zone: 'a' }));
    await put(`${name}-canary/10.0.0.9:50051`, naming('10.0.0.9:50051'));

    const table = expectExit(await sdkit(['ls', t(name)]), 0);
    expect(table.stdout.split('\n')).toEqual([
      expect.stringMatching(/^KEY\s+ADDRESS\s+METADATA$/),
      expect.stringMatching(
        new RegExp(`^${name}/10\\.0\\.0\\.1:50051\\s+10\\.0\\.0\\.1:50051\\s+\\{"zone":"a"\\}$`),
      ),
      expect.stringMatching(new RegExp(`^${name}/10\\.0\\.0\\.2:50051\\s+10\\.0\\.0\\.2:50051$`)),
      '',
    ]);
    expect(table.stderr).toBe('');

    const json = expectExit(await sdkit(['ls', t(name), '--json']), 0);
    expect(JSON.parse(json.stdout)).toEqual([
      { key: `${name}/10.0.0.1:50051`, address: '10.0.0.1:50051', metadata: { zone: 'a' } },
      { key: `${name}/10.0.0.2:50051`, address: '10.0.0.2:50051' },
    ]);
  });

  it("ls follows go-kit's /services/… layout with two slashes, and hints at them when one is missing", async () => {
    const name = svc('gokit');
    await put(`/services/${name}/1.2.3.4:8080`, 'http://1.2.3.4:8080');
    const found = expectExit(await sdkit(['ls', `${scheme}://${host}//services/${name}/`, '--json']), 0);
    expect(JSON.parse(found.stdout)).toEqual([
      { key: `/services/${name}/1.2.3.4:8080`, address: 'http://1.2.3.4:8080' },
    ]);
    const missed = expectExit(await sdkit(['ls', t(`services/${name}`), '--json']), 0);
    expect(missed.stdout).toBe('[]\n');
    expect(missed.stderr).toContain(`no instances: etcd http://${host} (`);
    expect(missed.stderr).toContain(
      `(for keys under "/services/${name}/" write ${scheme}://${host}//services/${name}/)`,
    );
  });

  it('ls takes the endpoints from --endpoints or $ETCDCTL_ENDPOINTS for etcd:///PREFIX', async () => {
    const name = svc('endpoints');
    await put(`${name}/a:1`, 'a:1');
    const viaFlag = expectExit(await sdkit(['ls', `${scheme}:///${name}`, '--endpoints', host, '--json']), 0);
    expect(JSON.parse(viaFlag.stdout)).toEqual([{ key: `${name}/a:1`, address: 'a:1' }]);
    const viaEnv = expectExit(
      await sdkit(['ls', `${scheme}:///${name}`, '--json'], { ETCDCTL_ENDPOINTS: server.endpoints[0]! }),
      0,
    );
    expect(viaEnv.stdout).toBe(viaFlag.stdout);
  });

  it('resolve waits for the first instance, then prints addresses one per line; exit 0', async () => {
    const name = svc('resolve');
    const run = startSdkit(['resolve', t(name), '--timeout', '30s']);
    await eventually(async () => run.script.child.pid !== undefined, 'the process to start');
    await put(`${name}/10.0.0.7:80`, 'http://10.0.0.7:80');
    const done = expectExit(await run.exited, 0);
    expect(done.stdout).toBe('http://10.0.0.7:80\n');
    expect(done.stderr).toBe('');
  });

  it('resolve fails with 1 after --timeout when there are no instances', async () => {
    const done = expectExit(await sdkit(['resolve', t(svc('none')), '--timeout', '300ms']), 1);
    expect(done.stdout).toBe('');
    expect(done.stderr).toMatch(/^sdkit: no instances within 300 ms from etcd .*; the source has none/);
  });

  it('watch prints one JSON object per change and exits 0 on SIGTERM and on SIGINT', async () => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const name = svc(`watch-${signal}`);
      await put(`${name}/a:1`, naming('a:1'));
      const watch = startSdkit(['watch', t(name)]);
      await watch.line(/"a:1"/);
      await put(`${name}/b:2`, naming('b:2', { zone: 'b' }));
      await watch.line(/"b:2"/);
      await server.etcdctl('del', `${name}/a:1`);
      await eventually(async () => watch.stdout().trimEnd().split('\n').length === 3, 'the third line');
      const done = expectExit(await watch.stop(signal), 0);
      expect(
        done.stdout
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l)),
      ).toEqual([
        { instances: [{ key: `${name}/a:1`, address: 'a:1' }] },
        {
          instances: [
            { key: `${name}/a:1`, address: 'a:1' },
            { key: `${name}/b:2`, address: 'b:2', metadata: { zone: 'b' } },
          ],
        },
        { instances: [{ key: `${name}/b:2`, address: 'b:2', metadata: { zone: 'b' } }] },
      ]);
      expect(done.stderr).toBe('');
    }
  });

  it('register writes etcd naming JSON under PREFIX+ADDRESS on a lease, and deletes it on SIGINT; exit 0', async () => {
    const name = svc('register');
    const reg = startSdkit([
      'register',
      t(name),
      '10.0.0.5:50051',
      '--ttl',
      '5',
      '--metadata',
      '{"zone":"c"}',
    ]);
    await reg.line(/^registered /);
    expect(await get(`${name}/10.0.0.5:50051`)).toBe(
      '{"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"zone":"c"}}',
    );
    const { stdout: lease } = await server.etcdctl('get', `${name}/10.0.0.5:50051`, '-w', 'json');
    expect(JSON.parse(lease).kvs[0].lease).toBeGreaterThan(0);
    const done = expectExit(await reg.stop('SIGINT'), 0);
    expect(done.stdout).toBe(
      `registered ${name}/10.0.0.5:50051 = {"Op":0,"Addr":"10.0.0.5:50051","Metadata":{"zone":"c"}} (lease TTL 5 s); Ctrl-C deregisters\n` +
        `deregistered ${name}/10.0.0.5:50051\n`,
    );
    expect(await get(`${name}/10.0.0.5:50051`)).toBeUndefined();
  });

  it('register with codec=gokit writes the address as the value, and the key expires after SIGKILL (lease TTL)', async () => {
    const name = svc('killed');
    const reg = startSdkit([
      'register',
      `${t(name)}?codec=gokit`,
      'http://10.0.0.6:8080',
      '--ttl',
      '2',
      '--json',
    ]);
    await reg.line(/"state":"registered"/);
    expect(JSON.parse(reg.stdout())).toEqual({
      state: 'registered',
      key: `${name}/http://10.0.0.6:8080`,
      value: 'http://10.0.0.6:8080',
      ttlSeconds: 2,
    });
    expect(await get(`${name}/http://10.0.0.6:8080`)).toBe('http://10.0.0.6:8080');
    const killed = await reg.stop('SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    // Nothing deleted it: it is still there, and goes when its lease runs out.
    expect(await get(`${name}/http://10.0.0.6:8080`)).toBe('http://10.0.0.6:8080');
    await eventually(
      async () => (await get(`${name}/http://10.0.0.6:8080`)) === undefined,
      'the key to expire',
      10_000,
    );
  });
});

describe('sdkit when etcd fails', () => {
  it('exits 1 with a clear message when etcd is unreachable (within --dial-timeout)', async () => {
    const done = expectExit(await sdkit(['ls', 'etcd://127.0.0.1:1/x', '--dial-timeout', '300ms']), 1);
    expect(done.stdout).toBe('');
    expect(done.stderr).toMatch(/^sdkit: could not reach etcd at http:\/\/127\.0\.0\.1:1 within 300 ms/);
    expect(done.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  it('watch reports the error while etcd is down (JSON and stderr) and recovers when it is back', async () => {
    const own = await startEtcd({ name: 'cli-down' });
    try {
      const target = `etcd://${own.endpoints[0]!.replace(/^http:\/\//, '')}/svc`;
      await own.etcdctl('put', 'svc/a:1', 'a:1');
      const watch = startSdkit(['watch', target]);
      await watch.line(/"a:1"/);
      await own.stop();
      await watch.line(/"error":\{"name":"EtcdWatchError"/, 30_000);
      const failing = JSON.parse(watch.stdout().trimEnd().split('\n').at(-1)!);
      expect(failing.instances).toEqual([{ key: 'svc/a:1', address: 'a:1' }]);
      await eventually(async () => /sdkit: etcd .*: /.test(watch.stderr()), 'a line on stderr');
      await own.start();
      await eventually(async () => watch.stderr().includes(': recovered'), 'recovered', 30_000);
      const last = JSON.parse(watch.stdout().trimEnd().split('\n').at(-1)!);
      expect(last).toEqual({ instances: [{ key: 'svc/a:1', address: 'a:1' }] });
      const done = expectExit(await watch.stop('SIGTERM'), 0);
      // Each failure once (its message may change while etcd stays down), then the recovery; nothing repeated.
      const lines = done.stderr.trimEnd().split('\n');
      expect(lines.at(-1)).toMatch(/^sdkit: etcd .*: recovered$/);
      expect(
        lines
          .slice(0, -1)
          .every((l) => /^sdkit: etcd .*keys under "svc\/": etcd (read|watch) of prefix/.test(l)),
      ).toBe(true);
    } finally {
      await own.close();
    }
  });

  it('watch piped into `head -n 1` exits 0 once head has gone (EPIPE), without a stack trace', async () => {
    const name = 'cli-pipe';
    await put(`${name}/a:1`, 'a:1');
    const { spawn } = await import('node:child_process');
    const { SDKIT_BIN } = await import('./fixtures/sdkit-process.js');
    const shell = spawn(
      'bash',
      [
        '-c',
        `node ${JSON.stringify(SDKIT_BIN)} watch etcd://${host}/${name} | head -n 1; echo "sdkit exit \${PIPESTATUS[0]}"`,
      ],
      { env: { ...process.env, NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    shell.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    shell.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const closed = new Promise<void>((r) => shell.once('close', () => r()));
    await eventually(async () => out.includes('"a:1"'), 'the first line through head');
    // head has exited; the next event's write meets the closed pipe.
    await put(`${name}/b:2`, 'b:2');
    await closed;
    expect(out.trimEnd().split('\n')).toEqual([expect.stringContaining('"a:1"'), 'sdkit exit 0']);
    expect(err).toBe('');
  });
});

describe('sdkit with etcd auth', () => {
  let authServer: EtcdServer;
  let dir: TempDir;
  const password = 'Cli-Pa55-k2v8r';

  beforeAll(async () => {
    dir = await makeTempDir('cli-auth');
    authServer = await startEtcd({ name: 'cli-auth' });
    const e = (...args: string[]) => authServer.etcdctl(...args);
    await e('user', 'add', 'root', `--new-user-password=${password}-root`);
    await e('user', 'grant-role', 'root', 'root');
    await e('user', 'add', 'svc', `--new-user-password=${password}`);
    await e('role', 'add', 'svc-rw');
    await e('role', 'grant-permission', 'svc-rw', 'readwrite', 'svc/', '--prefix=true');
    await e('user', 'grant-role', 'svc', 'svc-rw');
    await e('put', 'svc/a:1', 'a:1');
    await e('auth', 'enable');
  });
  afterAll(async () => {
    await authServer?.close();
    await dir?.remove();
  });

  const target = (scheme: string) => `${scheme}://${authServer.endpoints[0]!.replace(/^http:\/\//, '')}/svc`;

  it.each(['etcd', 'etcd+http'])(
    '%s: takes the password from $ETCDCTL_PASSWORD, $ETCDCTL_USER or --password-file',
    async (scheme) => {
      const file = join(dir.path, 'password');
      await writeFile(file, `${password}\n`);
      for (const [args, env] of [
        [['--user', 'svc'], { ETCDCTL_PASSWORD: password }],
        [[], { ETCDCTL_USER: `svc:${password}` }],
        [['--user', 'svc', '--password-file', file], {}],
      ] as const) {
        const done = expectExit(await sdkit(['ls', target(scheme), '--json', ...args], env), 0);
        expect(JSON.parse(done.stdout)).toEqual([{ key: 'svc/a:1', address: 'a:1' }]);
      }
    },
  );

  it.each(['etcd', 'etcd+http'])(
    '%s: wrong credentials exit 1 without showing them; none at all says so',
    async (scheme) => {
      const wrong = expectExit(
        await sdkit(['ls', target(scheme)], { ETCDCTL_USER: 'svc', ETCDCTL_PASSWORD: 'not-it-9z' }),
        1,
      );
      expect(wrong.stderr).toMatch(
        /^sdkit: etcd at http:\/\/127\.0\.0\.1:\d+ rejected the credentials of user "svc"/,
      );
      expect(wrong.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(wrong.stderr).not.toContain('not-it-9z');
      const none = expectExit(await sdkit(['ls', target(scheme)]), 1);
      expect(none.stderr).toMatch(
        /^sdkit: etcd at .* requires authentication .*: give --user NAME with \$ETCDCTL_PASSWORD or --password-file FILE\n$/,
      );
    },
  );

  it('register as a user allowed to write the prefix; refused outside it (exit 1)', async () => {
    const env = { ETCDCTL_USER: 'svc', ETCDCTL_PASSWORD: password };
    const reg = startSdkit(['register', target('etcd'), 'b:2', '--ttl', '3'], env);
    await reg.line(/^registered svc\/b:2/);
    expectExit(await reg.stop('SIGTERM'), 0);
    const outside = `etcd://${authServer.endpoints[0]!.replace(/^http:\/\//, '')}/other`;
    const refused = expectExit(await sdkit(['register', outside, 'b:2', '--ttl', '3'], env), 1);
    expect(refused.stderr).toMatch(
      /^sdkit: error: EtcdRegistrar: permission denied: etcd user "svc" may not write "other\/b:2"/,
    );
    // Said once (the registrar's log line has the key and etcd's answer), not again as the failure of register().
    expect(refused.stderr.trimEnd().split('\n')).toHaveLength(1);
  });
});

describe('sdkit with etcd over TLS (gRPC)', () => {
  let pair: TlsEtcdPair;
  beforeAll(async () => {
    pair = await startTlsEtcdPair('cli');
    await pair.tls.etcdctl('put', 'svc/a:1', 'a:1');
    await pair.mtls.etcdctl('put', 'svc/b:2', 'b:2');
  });
  afterAll(() => pair?.close());

  const hostOf = (s: EtcdServer) => s.endpoints[0]!.replace(/^https:\/\//, '');

  it('--cacert verifies the server; --cert and --key present a client certificate ($ETCDCTL_* too)', async () => {
    const { certs } = pair;
    const tls = expectExit(
      await sdkit(['ls', `etcd://${hostOf(pair.tls)}/svc`, '--cacert', certs.caFile, '--json']),
      0,
    );
    expect(JSON.parse(tls.stdout)).toEqual([{ key: 'svc/a:1', address: 'a:1' }]);
    const mtls = expectExit(
      await sdkit(['ls', `etcd://${hostOf(pair.mtls)}/svc`, '--json'], {
        ETCDCTL_CACERT: certs.caFile,
        ETCDCTL_CERT: certs.clientCertFile,
        ETCDCTL_KEY: certs.clientKeyFile,
      }),
      0,
    );
    expect(JSON.parse(mtls.stdout)).toEqual([{ key: 'svc/b:2', address: 'b:2' }]);
  });

  it('exits 1 naming the TLS failure when the CA does not match or the client certificate is missing', async () => {
    const { certs } = pair;
    const wrongCa = expectExit(
      await sdkit([
        'ls',
        `etcd://${hostOf(pair.tls)}/svc`,
        '--cacert',
        certs.otherCaFile,
        '--dial-timeout',
        '2s',
      ]),
      1,
    );
    expect(wrongCa.stderr).toMatch(/^sdkit: could not reach etcd at https:\/\/.*not signed by the CA given/);
    expect(wrongCa.stderr.trimEnd().split('\n')).toHaveLength(1);
    const noCert = expectExit(
      await sdkit([
        'ls',
        `etcd://${hostOf(pair.mtls)}/svc`,
        '--cacert',
        certs.caFile,
        '--dial-timeout',
        '2s',
      ]),
      1,
    );
    expect(noCert.stderr).toMatch(/^sdkit: could not reach etcd at https:\/\/.*client certificate/);
  });

  it('exits 2 for a CA file that cannot be read', async () => {
    const done = expectExit(
      await sdkit(['ls', `etcd://${hostOf(pair.tls)}/svc`, '--cacert', '/nonexistent/ca.pem']),
      2,
    );
    expect(done.stderr).toMatch(/^sdkit: createEtcdClient: .*ca.*\/nonexistent\/ca\.pem/);
  });
});
