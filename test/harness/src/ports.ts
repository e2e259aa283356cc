import { createServer } from 'node:net';

/** Ports handed out by this process, so two calls never return the same port even before either is bound. */
const handedOut = new Set<number>();

/**
 * Resolves with a TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it: bind to port 0, read it,
 * close). The same process never gets the same port twice. Another process may still grab it before the caller
 * binds it — callers that can retry on "address already in use" should (startEtcd does).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        const address = server.address();
        const p = typeof address === 'object' && address !== null ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (port > 0 && !handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('freePort: the kernel kept returning ports already handed out');
}
