/**
 * Registrar and instancer together through etcd failures: what a client sees of a service while etcd loses its
 * data or its leader. Each registrar has its own client, as a separate process would. Every test runs with both
 * clients on each transport (gRPC and HTTP/JSON); what the tests check etcd against is etcdctl.
 */
import type { InstancerEvent, RegistrarState } from '@sdkit/sd-core';
import { startEtcd, startEtcdCluster, waitFor } from '@sdkit/test-harness';
import { describe, expect, it } from 'vitest';
import { createEtcdClient, type EtcdClient } from './client.js';
import { codecs } from './codecs.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar } from './registrar.js';

const WAIT = 20_000;
const keys = (e: InstancerEvent) => e.instances.map((i) => i.key).join(',');

const TRANSPORTS = [{ transport: 'grpc' as const }, { transport: 'http' as const }];

/** A client over `transport`. */
function clientFor(transport: 'grpc' | 'http', endpoints: readonly string[]): Promise<EtcdClient> {
  return transport === 'http'
    ? createEtcdClient({ transport: 'http', endpoints })
    : createEtcdClient({ endpoints });
}

describe.each(TRANSPORTS)('registrar + instancer through etcd failures ($transport)', ({ transport }) => {
  it('after a restart with wiped data, the registrar registers again and the instancer sees it again', async () => {
    await using etcd = await startEtcd({ name: `recovery-wipe-${transport}` });
    await using serviceClient = await clientFor(transport, etcd.endpoints);
    await using watcherClient = await clientFor(transport, etcd.endpoints);

    const registrar = new EtcdRegistrar(serviceClient, {
      key: 'my-service/127.0.0.1:50051',
      instance: { address: '127.0.0.1:50051', metadata: { zone: 'a' } },
      codec: codecs.etcdNaming,
      ttlSeconds: 2,
    });
    const states: RegistrarState[] = [];
    registrar.state$.subscribe((s) => states.push(s));
    using instancer = new EtcdInstancer(watcherClient, { prefix: 'my-service/', codec: codecs.etcdNaming });
    const events: InstancerEvent[] = [];
    instancer.events$.subscribe((e) => events.push(e));

    await registrar.register();
    await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => keys(e) === 'my-service/127.0.0.1:50051',
      'registered instance seen',
      WAIT,
    );

    await etcd.restart({ wipe: true });
    // The store came back empty; the registrar notices its lease is gone and puts the key again.
    await waitFor(registrar.state$, (s) => s === 'lost', 'registrar notices the lost lease', WAIT);
    await waitFor(registrar.state$, (s) => s === 'registered', 'registrar registered again', WAIT);
    const final = await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => !e.error && keys(e) === 'my-service/127.0.0.1:50051',
      'instancer sees the instance again, without error',
      WAIT,
    );

    expect(final.instances[0]).toEqual({
      key: 'my-service/127.0.0.1:50051',
      address: '127.0.0.1:50051',
      metadata: { zone: 'a' },
    });
    const { stdout } = await etcd.etcdctl('get', 'my-service/127.0.0.1:50051', '--print-value-only');
    expect(stdout.trim()).toBe('{"Op":0,"Addr":"127.0.0.1:50051","Metadata":{"zone":"a"}}');
    expect(states).toEqual(['registering', 'registered', 'lost', 'registering', 'registered']);
    // Errors are data: no event ever held a duplicate key.
    for (const e of events) expect(new Set(e.instances.map((i) => i.key)).size).toBe(e.instances.length);

    await registrar.deregister();
    await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => e.instances.length === 0,
      'deregistered instance gone',
      WAIT,
    );
  });

  it('in a 3-member cluster, killing the leader loses no registration and duplicates none', async () => {
    await using cluster = await startEtcdCluster(3);
    await using serviceClient = await clientFor(transport, cluster.endpoints);
    await using watcherClient = await clientFor(transport, cluster.endpoints);
    const registrars = Array.from(
      { length: 20 },
      (_, i) =>
        new EtcdRegistrar(serviceClient, {
          key: `/services/foosvc/127.0.0.1:${8000 + i}`,
          value: `http://127.0.0.1:${8000 + i}`,
          ttlSeconds: 5,
        }),
    );
    using instancer = new EtcdInstancer(watcherClient, { prefix: '/services/foosvc/', codec: codecs.gokit });
    let maxSeen = 0;
    let minAfterFull = Number.POSITIVE_INFINITY;
    let full = false;
    instancer.events$.subscribe((e) => {
      maxSeen = Math.max(maxSeen, e.instances.length);
      if (e.instances.length === 20) full = true;
      if (full) minAfterFull = Math.min(minAfterFull, e.instances.length);
    });

    await Promise.all(registrars.map((r) => r.register()));
    await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => e.instances.length === 20,
      'all 20 visible',
      WAIT,
    );

    const leader = await cluster.leader();
    await leader.kill();
    // Writes still work on the surviving quorum: one more registration goes through and is seen.
    const late = new EtcdRegistrar(serviceClient, {
      key: '/services/foosvc/127.0.0.1:9999',
      value: 'http://127.0.0.1:9999',
      ttlSeconds: 5,
    });
    await late.register();
    const after = await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => e.instances.length === 21,
      'the late one visible',
      WAIT,
    );

    expect(after.instances.map((i) => i.address)).toEqual(
      [
        ...Array.from({ length: 20 }, (_, i) => `http://127.0.0.1:${8000 + i}`),
        'http://127.0.0.1:9999',
      ].sort(),
    );
    expect(maxSeen).toBe(21);
    expect(minAfterFull).toBe(20); // never fewer than 20 once all were seen
    await Promise.all([...registrars, late].map((r) => r.deregister()));
    await waitFor<InstancerEvent>(
      instancer.events$,
      (e) => e.instances.length === 0,
      'all deregistered',
      WAIT,
    );
  });
});
