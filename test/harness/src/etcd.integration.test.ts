import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { type EtcdServer, startEtcd, startEtcdCluster } from './etcd.js';
import { makeCertificates } from './tls.js';
import { eventually } from './wait.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function get(server: EtcdServer, key: string): Promise<string | undefined> {
  const { stdout } = await server.etcdctl('get', key, '--print-value-only');
  return stdout === '' ? undefined : stdout.replace(/\n$/, '');
}

describe('startEtcd', () => {
  const opened: EtcdServer[] = [];
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
  });

  it('serves put/get through etcdctl; stop/start keeps data on the same port; wipe loses it', async () => {
    const server = await startEtcd({ name: 'basic' });
    opened.push(server);
    expect(server.endpoints).toHaveLength(1);
    expect(server.endpoints[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(server.pid).toBeGreaterThan(0);

    await server.etcdctl('put', 'k', 'v1');
    expect(await get(server, 'k')).toBe('v1');
    const rev = await server.revision();
    expect(rev).toBeGreaterThanOrEqual(2);

    const endpoint = server.endpoints[0];
    await server.stop();
    expect(server.pid).toBeUndefined();
    await expect(
      server.etcdctl('get', 'k', '--dial-timeout=300ms', '--command-timeout=500ms'),
    ).rejects.toThrow(/etcdctl get k .*failed/);
    await server.start();
    expect(server.endpoints[0]).toBe(endpoint);
    expect(await get(server, 'k')).toBe('v1');
    expect(await server.revision()).toBe(rev);

    await server.restart({ wipe: true });
    expect(server.endpoints[0]).toBe(endpoint);
    expect(await get(server, 'k')).toBeUndefined();
    expect(await server.revision()).toBe(1);
  });

  it('kill -9 takes it down at once, and it recovers its data from the WAL', async () => {
    const server = await startEtcd({ name: 'kill' });
    opened.push(server);
    await server.etcdctl('put', 'durable', 'yes');
    const pid = server.pid!;
    await server.kill();
    expect(server.pid).toBeUndefined();
    expect(alive(pid)).toBe(false);
    await server.start();
    expect(server.pid).not.toBe(pid);
    expect(await get(server, 'durable')).toBe('yes');
  });

  it('compact makes older revisions unavailable', async () => {
    const server = await startEtcd({ name: 'compact' });
    opened.push(server);
    await server.etcdctl('put', 'c', 'old');
    const old = await server.revision();
    await server.etcdctl('put', 'c', 'new');
    expect((await server.etcdctl('get', 'c', '--rev', String(old), '--print-value-only')).stdout.trim()).toBe(
      'old',
    );
    const at = await server.compact();
    expect(at).toBe(old + 1);
    await expect(server.etcdctl('get', 'c', '--rev', String(old))).rejects.toThrow(/compacted/);
    expect(await get(server, 'c')).toBe('new');
  });

  it('close kills the process and removes the temp dir; it is idempotent', async () => {
    const server = await startEtcd({ name: 'close' });
    const pid = server.pid!;
    expect(existsSync(server.dataDir)).toBe(true);
    await server.close();
    await server.close();
    expect(alive(pid)).toBe(false);
    expect(existsSync(server.dataDir)).toBe(false);
    expect(server.pid).toBeUndefined();
    await expect(server.start()).rejects.toThrow(/closed/);
  });

  it('serves TLS with client-certificate auth using makeCertificates()', async () => {
    await using certs = await makeCertificates();
    const server = await startEtcd({
      name: 'tls',
      tls: {
        certFile: certs.serverCertFile,
        keyFile: certs.serverKeyFile,
        caFile: certs.caFile,
        clientCertAuth: true,
      },
    });
    opened.push(server);
    expect(server.endpoints[0]).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await server.etcdctl('put', 'secure', 'yes');
    expect(await get(server, 'secure')).toBe('yes');
    // Without the client certificate flags, etcdctl is refused.
    await expect(
      server.etcdctl('get', 'secure', '--cert=', '--key=', '--dial-timeout=500ms', '--command-timeout=1s'),
    ).rejects.toThrow(/failed/);
    await server.close();
    expect(existsSync(certs.caFile)).toBe(true);
  });

  it('fails start-up with the etcd log in the message', async () => {
    await expect(startEtcd({ name: 'bad', extraArgs: ['--heartbeat-interval=1000'] })).rejects.toThrow(
      /exited during start-up[\s\S]*election-timeout/,
    );
  });
});

describe('startEtcdCluster', () => {
  it('finds the leader, and a new one after the leader is killed; a killed member rejoins', async () => {
    await using cluster = await startEtcdCluster(3);
    expect(cluster.members).toHaveLength(3);
    expect(new Set(cluster.endpoints).size).toBe(3);
    const first = await cluster.leader();
    expect(cluster.members).toContain(first);

    await cluster.members[0]!.etcdctl('put', 'shared', 'x');
    await first.kill();
    const second = await cluster.leader();
    expect(second).not.toBe(first);
    expect(second.pid).toBeDefined();
    const survivor = cluster.members.find((m) => m !== first)!;
    expect(await get(survivor, 'shared')).toBe('x');

    await survivor.etcdctl('put', 'shared', 'y');
    await first.start();
    await eventually(async () => (await get(first, 'shared')) === 'y', 'the restarted member to catch up');
    await expect(first.restart({ wipe: true })).rejects.toThrow(/not supported for cluster members/);
  });

  it('close stops every member and removes their dirs', async () => {
    const cluster = await startEtcdCluster(3);
    const pids = cluster.members.map((m) => m.pid!);
    await cluster.close();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    for (const m of cluster.members) expect(existsSync(m.dataDir)).toBe(false);
  });
});
