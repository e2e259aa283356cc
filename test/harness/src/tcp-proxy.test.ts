import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy } from './tcp-proxy.js';

/** An echo server on a free loopback port. */
async function echoServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A client connection that collects what it receives. */
async function connect(endpoint: string) {
  const url = new URL(endpoint);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  const waiters: (() => void)[] = [];
  socket.on('data', (d) => {
    received += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  return {
    socket,
    closed,
    get received() {
      return received;
    },
    /** Resolves once `text` has been received (in total). */
    until(text: string): Promise<void> {
      return new Promise((resolve) => {
        const check = () => (received.includes(text) ? resolve() : waiters.push(check));
        check();
      });
    },
  };
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function setup() {
  const echo = await echoServer();
  const proxy = await TcpProxy.start(echo.url);
  cleanup.push(echo.close, () => proxy.close());
  return { echo, proxy };
}

describe('TcpProxy', () => {
  it('passes bytes both ways and keeps the scheme of the target', async () => {
    const { proxy } = await setup();
    expect(proxy.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const c = await connect(proxy.endpoint);
    c.socket.write('hello');
    await c.until('hello');
    c.socket.destroy();
  });

  it('cut resets open connections and refuses new ones until resume', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.endpoint);
    proxy.cut();
    await c.closed;
    const refused = await connect(proxy.endpoint);
    await refused.closed;
    expect(refused.received).toBe('');
    proxy.resume();
    const again = await connect(proxy.endpoint);
    again.socket.write('back');
    await again.until('back');
    again.socket.destroy();
  });

  it('stall holds bytes on an open connection and delivers them in order on resume', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.endpoint);
    proxy.stall();
    c.socket.write('one,');
    c.socket.write('two');
    // A round trip through an unrelated, un-stalled path proves time passed without delivery.
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 50));
    expect(c.received).toBe('');
    expect(c.socket.destroyed).toBe(false);
    proxy.resume();
    await c.until('one,two');
    c.socket.destroy();
  });

  it('delay holds each chunk at least that long', async () => {
    const { proxy } = await setup();
    const c = await connect(proxy.endpoint);
    proxy.delay(60);
    const t0 = performance.now();
    c.socket.write('slow');
    await c.until('slow');
    // Two hops (to the echo server and back), each delayed.
    expect(performance.now() - t0).toBeGreaterThanOrEqual(110);
    proxy.delay(0);
    c.socket.destroy();
    expect(() => proxy.delay(-1)).toThrow(TypeError);
  });
});
