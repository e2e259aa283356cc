import { type ServiceError, status } from '@grpc/grpc-js';
import { retry, roundRobin } from '@sdkit/lb';
import { endpointer, FixedInstancer } from '@sdkit/sd-core';
import { codecs, createEtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd';
import { eventually, startEtcd } from '@sdkit/test-harness';
import { afterEach, describe, expect, it } from 'vitest';
import { grpcFactory } from './factory.js';
import {
  EchoClient,
  type EchoServer,
  startEchoServer,
  type WhoReply,
  type WhoRequest,
} from './fixtures/echo-server.mjs';

// grpcFactory over real grpc-js servers on 127.0.0.1: instancer → endpointer → roundRobin → retry over gRPC.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined);
});

async function server(id: string): Promise<EchoServer> {
  const s = await startEchoServer(id);
  cleanups.push(() => s.kill());
  return s;
}

const who = grpcFactory<WhoRequest, WhoReply>(EchoClient, 'Who');

describe('grpcFactory', () => {
  it('instancer → endpointer → roundRobin → retry spreads calls over the servers', async () => {
    const a = await server('a');
    const b = await server('b');
    const ep = endpointer(new FixedInstancer([a.address, `http://${b.address}`]), who);
    cleanups.push(() => ep.close());
    const call = retry(roundRobin(ep), { maxAttempts: 2, timeoutMs: 5000 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await call({ name: `n${i}` })).id);
    expect(ids.filter((id) => id === 'a')).toHaveLength(5);
    expect(ids.filter((id) => id === 'b')).toHaveLength(5);
    expect(a.state.calls + b.state.calls).toBe(10);
  });

  it('a dead server is retried elsewhere; the failed attempt is UNAVAILABLE', async () => {
    const a = await server('alive');
    const dead = await server('dead');
    const ep = endpointer(new FixedInstancer([a.address, dead.address]), who);
    cleanups.push(() => ep.close());
    dead.kill();
    const attemptErrors: Error[] = [];
    const call = retry(roundRobin(ep), {
      maxAttempts: 3,
      timeoutMs: 5000,
      backoff: false,
      onRetry: (info) => attemptErrors.push(info.error),
    });
    for (let i = 0; i < 6; i++) expect((await call({})).id).toBe('alive');
    expect(attemptErrors.length).toBeGreaterThan(0);
    for (const e of attemptErrors) expect((e as ServiceError).code).toBe(status.UNAVAILABLE);
  });

  it('the AbortSignal cancels the call on the wire and rejects at once with its reason', async () => {
    const s = await server('slow');
    const { endpoint, close } = await who({ key: s.address, address: s.address });
    cleanups.push(() => close?.());
    const controller = new AbortController();
    const pending = endpoint({ delay_ms: 30_000 }, { signal: controller.signal });
    await eventually(async () => s.state.inFlight === 1, 'the server receiving the call');
    const reason = new Error('caller gave up');
    const started = performance.now();
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(performance.now() - started).toBeLessThan(500);
    await eventually(async () => s.state.cancelled === 1, 'the server seeing the cancellation');

    const callsBefore = s.state.calls;
    await expect(endpoint({}, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(s.state.calls).toBe(callsBefore);
  });

  it('timeoutMs becomes the call deadline (DEADLINE_EXCEEDED)', async () => {
    const s = await server('late');
    const f = grpcFactory<WhoRequest, WhoReply>(EchoClient, 'Who', { timeoutMs: 100 });
    const { endpoint, close } = await f({ key: 'k', address: s.address });
    cleanups.push(() => close?.());
    await expect(endpoint({ delay_ms: 5000 })).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    expect((await endpoint({ name: 'quick' })).name).toBe('quick');
  });

  it('close() closes the channel: later calls reject', async () => {
    const s = await server('closing');
    const { endpoint, close } = await who({ key: 'k', address: s.address });
    expect((await endpoint({})).id).toBe('closing');
    await close?.();
    await expect(endpoint({})).rejects.toThrow(/closed/);
  });

  it('refuses bad arguments and undialable addresses with TypeErrors', async () => {
    expect(() => grpcFactory(42 as never, 'Who')).toThrow(/ClientClass must be a gRPC client class, got 42/);
    expect(() => grpcFactory(EchoClient, 'Nope')).toThrow(/no method "Nope"/);
    expect(() => grpcFactory(EchoClient, 'Watch')).toThrow(/streaming method/);
    expect(() => grpcFactory(EchoClient, 'Who', { timeoutMs: -1 })).toThrow(/timeoutMs/);
    await expect(async () => who({ key: 'k', address: 'unix:///x' })).rejects.toThrow(
      /cannot dial instance "k" at "unix:\/\/\/x"/,
    );
  });

  it('follows etcd: EtcdInstancer (etcd naming) → endpointer → roundRobin → retry', async () => {
    const etcd = await startEtcd({ name: 'sd-grpc-factory' });
    cleanups.push(() => etcd.close());
    const client = await createEtcdClient({ endpoints: etcd.endpoints });
    cleanups.push(() => client.close());
    const a = await server('etcd-a');
    const reg = new EtcdRegistrar(client, {
      key: `fsvc/${a.address}`,
      instance: { address: a.address },
      codec: codecs.etcdNaming,
    });
    cleanups.push(() => reg[Symbol.asyncDispose]());
    await reg.register();
    const instancer = new EtcdInstancer(client, { prefix: 'fsvc/', codec: codecs.etcdNaming });
    cleanups.push(() => instancer.stop());
    const ep = endpointer(instancer, who);
    cleanups.push(() => ep.close());
    const call = retry(roundRobin(ep), { maxAttempts: 3, timeoutMs: 5000 });
    expect((await call({})).id).toBe('etcd-a');
  });
});
