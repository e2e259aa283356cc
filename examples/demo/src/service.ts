import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A tiny HTTP service of the demo: answers every request with `{"id": <name>}`. */
export interface DemoService {
  readonly name: string;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** Requests served so far. */
  readonly served: number;
  /** Closes the listener and resets every open connection at once, as a crash would. */
  kill(): Promise<void>;
}

/** Starts a service on a free loopback port. */
export async function startService(name: string): Promise<DemoService> {
  let served = 0;
  const body = JSON.stringify({ id: name });
  const server: Server = createServer((_req, res) => {
    served++;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    name,
    address: `127.0.0.1:${port}`,
    get served() {
      return served;
    },
    kill: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
