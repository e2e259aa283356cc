/**
 * The load-aware stack over real node:http servers on loopback: CallMeter → endpointer → outlierEjection →
 * peakEwma → retry, against three healthy instances, one 10× slower and one answering every call with a 503. The
 * slow and the failing instance must get a small share of the requests, and no call may fail.
 */
import { once } from 'node:events';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { endpointer, type Factory, type Instance } from '@sdkit/sd-core';
import { FakeInstancer } from '@sdkit/sd-core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { CallMeter } from './call-meter.js';
import { outlierEjection } from './outlier-ejection.js';
import { peakEwma } from './peak-ewma.js';
import { retry } from './retry.js';

/** How a test server answers: after `delayMs` with a 200, or at once with a 503. */
type Behaviour = { readonly delayMs: number } | 'fail';

interface TestServer {
  readonly instance: Instance;
  /** Requests received. */
  readonly requests: () => number;
}

const servers: Server[] = [];

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
});

async function startServer(key: string, behaviour: Behaviour): Promise<TestServer> {
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    req.resume();
    const answer = (status: number) => {
      res.writeHead(status, { 'content-length': '2' });
      res.end(status === 200 ? 'ok' : 'no');
    };
    if (behaviour === 'fail') answer(503);
    else setTimeout(() => answer(200), behaviour.delayMs);
  });
  server.keepAliveTimeout = 60_000;
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { instance: { key, address: `127.0.0.1:${port}` }, requests: () => requests };
}

/** `GET /` on the instance over a kept-alive connection pool of its own; rejects unless the answer is a 200. */
const httpFactory: Factory<void, string> = (instance) => {
  const [host, port] = instance.address.split(':');
  const agent = new Agent({ keepAlive: true });
  return {
    endpoint: (_request, options) =>
      new Promise<string>((resolve, reject) => {
        const signal = options?.signal;
        const req = request({ host, port: Number(port), agent, ...(signal ? { signal } : {}) }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () =>
            res.statusCode === 200
              ? resolve(`${instance.key}:${body}`)
              : reject(new Error(`HTTP ${res.statusCode} from ${instance.key}`)),
          );
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
};

describe('load-aware balancing over real HTTP servers', () => {
  it('peakEwma behind outlierEjection gives a slow and a failing instance a small share; retry fails no call', async () => {
    const healthy = await Promise.all(['a', 'b', 'c'].map((key) => startServer(key, { delayMs: 5 })));
    const slow = await startServer('slow', { delayMs: 50 });
    const failing = await startServer('failing', 'fail');
    const all = [...healthy, slow, failing];

    const instancer = new FakeInstancer(all.map((s) => s.instance));
    const meter = new CallMeter();
    const endpoints = endpointer(instancer, meter.measure(httpFactory));
    const ejector = outlierEjection(endpoints, { meter });
    const call = retry(peakEwma(ejector, { meter, seed: 7 }), { maxAttempts: 3, timeoutMs: 5_000 });
    try {
      await endpoints.ready();
      // Open loop: a call every 10 ms (≈ 100 calls/s) whatever the latency, 300 calls.
      const calls: Promise<string>[] = [];
      for (let i = 0; i < 300; i++) {
        calls.push(call());
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const outcomes = await Promise.allSettled(calls);

      const failed = outcomes.filter((o) => o.status === 'rejected');
      expect(failed).toEqual([]);
      const total = all.reduce((n, s) => n + s.requests(), 0);
      expect(total).toBeGreaterThanOrEqual(300);
      // The failing instance is ejected after 5 failures in a row (a few more may be in flight then); the slow one
      // costs 10× the others' latency, so peakEwma's two choices avoid it.
      expect(failing.requests() / total).toBeLessThanOrEqual(0.03);
      expect(slow.requests() / total).toBeLessThanOrEqual(0.05);
      expect(ejector.ejected().map((e) => e.key)).toEqual(['failing']);
      // None of the healthy ones is starved (peakEwma need not spread evenly among equals).
      for (const s of healthy) expect(s.requests()).toBeGreaterThan(0.05 * total);
    } finally {
      ejector.close();
      await endpoints.close();
      instancer.stop();
    }
  });
});
