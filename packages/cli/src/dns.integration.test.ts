/**
 * `sdkit` against a real DNS server (BIND, from test/harness) whose records change during the test, as a plain
 * child process: dns+srv:// and dns:// targets, output, exit status, and that it exits by itself promptly.
 */
import { type DnsServer, startDnsServer } from '@sdkit/test-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, sdkit, startSdkit } from './fixtures/sdkit-process.js';

let dns: DnsServer;

beforeAll(async () => {
  dns = await startDnsServer({
    name: 'cli',
    records: [
      '_http._tcp 1 IN SRV 10 5 8080 a',
      '_http._tcp 1 IN SRV 20 1 8081 b',
      '_watch._tcp 1 IN SRV 10 5 8080 a',
      'api 1 IN A 127.0.0.1',
      'api 1 IN AAAA ::1',
    ],
  });
});
afterAll(() => dns?.close());

describe('sdkit on dns+srv:// and dns:// targets', () => {
  it('ls prints the SRV records as instances (target:port, priority and weight as metadata); exit 0', async () => {
    const target = `dns+srv://${dns.server}/_http._tcp.sdkit.test.`;
    const json = expectExit(await sdkit(['ls', target, '--json']), 0);
    expect(JSON.parse(json.stdout)).toEqual([
      {
        key: 'a.sdkit.test:8080',
        address: 'a.sdkit.test:8080',
        metadata: { priority: 10, weight: 5, target: 'a.sdkit.test', port: 8080 },
      },
      {
        key: 'b.sdkit.test:8081',
        address: 'b.sdkit.test:8081',
        metadata: { priority: 20, weight: 1, target: 'b.sdkit.test', port: 8081 },
      },
    ]);
    const table = expectExit(await sdkit(['ls', target]), 0);
    expect(table.stdout.split('\n')[0]).toMatch(/^KEY\s+ADDRESS\s+METADATA$/);
    expect(table.stdout).toMatch(/a\.sdkit\.test:8080\s+a\.sdkit\.test:8080\s+\{"priority":10/);
  });

  it('resolve prints the A and AAAA addresses of a dns:// target on its port, one per line', async () => {
    const done = expectExit(await sdkit(['resolve', `dns://${dns.server}/api.sdkit.test:9000`]), 0);
    expect(done.stdout.trimEnd().split('\n').sort()).toEqual(['127.0.0.1:9000', '[::1]:9000']);
  });

  it('ls of a name that does not exist: NXDOMAIN on stderr, exit 1', async () => {
    const done = expectExit(await sdkit(['ls', `dns+srv://${dns.server}/_nope._tcp.sdkit.test.`]), 1);
    expect(done.stderr).toMatch(/NXDOMAIN|does not exist/i);
  });

  it('register is refused: DNS targets are read-only (exit 2)', async () => {
    const done = expectExit(
      await sdkit([
        'register',
        `dns+srv://${dns.server}/_http._tcp.sdkit.test.`,
        '10.0.0.1:80',
        '--ttl',
        '5',
      ]),
      2,
    );
    expect(done.stderr).toMatch(/read-only/);
  });

  it('watch prints a line when a record is added and another when it goes; exit 0 on SIGINT', async () => {
    const watch = startSdkit(['watch', `dns+srv://${dns.server}/_watch._tcp.sdkit.test.`]);
    await watch.line(/"a\.sdkit\.test:8080"/);
    await dns.update('update add _watch._tcp.sdkit.test. 1 IN SRV 10 5 9090 c.sdkit.test.');
    await watch.line(/"c\.sdkit\.test:9090"/);
    await dns.update('update delete _watch._tcp.sdkit.test. SRV 10 5 8080 a.sdkit.test.');
    await watch.line(/^\{"instances":\[\{"key":"c\.sdkit\.test:9090"[^\]]*\]\}$/);
    const done = expectExit(await watch.stop('SIGINT'), 0);
    const lines = done.stdout
      .trimEnd()
      .split('\n')
      .map((line) => (JSON.parse(line) as { instances: { key: string }[] }).instances.map((i) => i.key));
    expect(lines).toEqual([
      ['a.sdkit.test:8080'],
      ['a.sdkit.test:8080', 'c.sdkit.test:9090'],
      ['c.sdkit.test:9090'],
    ]);
  });
});
