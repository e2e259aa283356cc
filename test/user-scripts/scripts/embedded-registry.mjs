// The embedded registry, no server anywhere: register, discover, call, deregister, dispose.
import { retry, roundRobin } from '@sdkit/lb';
import { endpointer, MemoryRegistry } from '@sdkit/sd-core';

const registry = new MemoryRegistry();
const registrars = ['a', 'b'].map((name) =>
  registry.registrar({ key: `svc/${name}`, address: `local://${name}`, ttlSeconds: 5 }),
);
await Promise.all(registrars.map((r) => r.register()));
console.log(`registered ${registry.size}`);

const instancer = registry.instancer('svc/');
const endpoints = endpointer(instancer, (instance) => ({
  endpoint: async (request) => `${instance.address} got ${request}`,
}));
const call = retry(roundRobin(endpoints), { maxAttempts: 2, timeoutMs: 1_000 });
console.log(await call('one'));
console.log(await call('two'));

await endpoints.close();
instancer.stop();
await Promise.all(registrars.map((r) => r.deregister()));
console.log(`deregistered, ${registry.size} left`);
registry.close();
