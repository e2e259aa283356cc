import { Agent, request } from 'node:http';
import type { Factory, Instance } from '@sdkit/sd-core';

/** What the demo services answer. */
export interface Reply {
  readonly id: string;
}

/**
 * A {@link Factory} for the demo's HTTP services: one keep-alive agent per instance, destroyed when the instance
 * goes away. The endpoint sends `GET /` and resolves with the JSON reply; it rejects on a transport error, a
 * non-200 status, or when the caller's signal aborts.
 */
export const httpFactory: Factory<void, Reply> = (instance: Instance) => {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const base = instance.address.includes('://') ? instance.address : `http://${instance.address}`;
  return {
    endpoint: (_req, options) =>
      new Promise<Reply>((resolve, reject) => {
        const req = request(base, { agent, signal: options?.signal }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            if (res.statusCode !== 200)
              return reject(new Error(`${instance.address}: HTTP ${res.statusCode}`));
            try {
              resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Reply);
            } catch (err) {
              reject(err);
            }
          });
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
};
