// A one-shot call to a service that is down (connection refused on every attempt): the RetryError must be seen,
// not lost to an exit while retry waits out its backoff (this once exited with code 13, printing nothing).
import { RetryError, retry, roundRobin } from '@sdkit/lb';
import { endpointer, FixedInstancer } from '@sdkit/sd-core';

const address = process.env.DOWN_ADDRESS; // e.g. http://127.0.0.1:PORT, where nothing listens
const instancer = new FixedInstancer([{ key: 'down', address }]);
const endpoints = endpointer(instancer, (instance) => ({
  endpoint: async (path, options) => {
    const res = await fetch(new URL(path, instance.address), { signal: options?.signal ?? null });
    return res.text();
  },
}));
const call = retry(roundRobin(endpoints), { maxAttempts: 3, timeoutMs: 5_000, backoff: { initialMs: 400 } });
try {
  await call('/');
  console.log('unexpected: the call succeeded');
  process.exitCode = 1;
} catch (err) {
  if (!(err instanceof RetryError)) throw err;
  console.log(`${err.name} (${err.reason}, ${err.errors.length} attempts): ${err.message}`);
} finally {
  await endpoints.close();
  instancer.stop();
}
