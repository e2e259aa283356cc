import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Factory, Instance } from '@sdkit/sd-core';

/** One "pod" of the example's Service: an HTTP server answering every request with its name. */
export interface HelloServer {
  readonly name: string;
  /** The IP address it listens on. */
  readonly host: string;
  /** The port it listens on. */
  readonly port: number;
  /** Requests answered so far. */
  readonly served: number;
  /** Closes the listener and every open connection. */
  stop(): Promise<void>;
}

/** Starts a {@link HelloServer} on a free port of `host` (an IP address of this machine). */
export async function startHelloServer(name: string, host: string): Promise<HelloServer> {
  let served = 0;
  const server = createServer((_req, res) => {
    served++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(name);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    name,
    host,
    port,
    get served() {
      return served;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The endpoint of one instance (`ip:port`): `GET /`, resolving with the body (the server's name). One keep-alive
 * agent per instance, destroyed when the instance leaves the set (the Endpointer calls `close`).
 */
export const helloFactory: Factory<void, string> = (instance: Instance) => {
  const agent = new Agent({ keepAlive: true });
  const url = `http://${instance.address}/`;
  return {
    endpoint: (_request, options) =>
      new Promise<string>((resolve, reject) => {
        const req = request(url, { agent, signal: options?.signal }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('error', reject);
          res.on('end', () =>
            res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: HTTP ${res.statusCode}`)),
          );
        });
        req.on('error', reject);
        req.end();
      }),
    close: () => agent.destroy(),
  };
};
