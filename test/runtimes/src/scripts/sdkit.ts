/**
 * The scenarios over sdkit's portable entry, `@sdkit/sd-etcd/http`: `EtcdInstancer` and `EtcdRegistrar` on a
 * client created with its `createEtcdClient` (etcd's HTTP/JSON gateway over the runtime's `fetch`).
 * @module
 */
import { createEtcdClient, EtcdInstancer, EtcdRegistrar } from '@sdkit/sd-etcd/http';
import { aborted, type Emit, type RegisterParams, type Scenarios, type WatchParams } from './protocol.js';

async function watch(params: WatchParams, emit: Emit, signal: AbortSignal): Promise<void> {
  const client = await createEtcdClient({ endpoints: [...params.endpoints] });
  const instancer = new EtcdInstancer(client, { prefix: params.prefix });
  const subscription = instancer.events$.subscribe((event) => {
    emit({
      type: 'instances',
      keys: event.instances.map((i) => i.key),
      addresses: event.instances.map((i) => i.address),
      ...(event.error ? { error: event.error.message } : {}),
    });
  });
  try {
    await aborted(signal);
  } finally {
    subscription.unsubscribe();
    instancer.stop();
    client.close();
  }
}

async function register(params: RegisterParams, emit: Emit, signal: AbortSignal): Promise<void> {
  const client = await createEtcdClient({ endpoints: [...params.endpoints] });
  const registrar = new EtcdRegistrar(client, {
    key: params.key,
    instance: { address: params.address },
    ttlSeconds: params.ttlSeconds,
  });
  const subscription = registrar.state$.subscribe((state) => emit({ type: 'state', state }));
  try {
    await registrar.register();
    await aborted(signal);
    await registrar.deregister();
  } finally {
    subscription.unsubscribe();
    client.close();
  }
}

/** The implementation under test: sdkit's portable entry. */
export const sdkit: Scenarios = { name: 'sdkit (@sdkit/sd-etcd/http)', watch, register };
