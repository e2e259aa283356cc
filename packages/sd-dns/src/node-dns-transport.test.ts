/**
 * nodeDnsTransport against in-process UDP and TCP peers on loopback that misbehave on purpose: datagrams with the
 * wrong ID, answers split into one-byte TCP segments, connections closed early, and aborts.
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DNS_PORT, type DnsServer, parseDnsServer } from './dns-server.js';
import { nodeDnsTransport } from './node-dns-transport.js';

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

function server(host: string, port: number): DnsServer {
  const parsed = parseDnsServer(host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);
  if (typeof parsed === 'string') throw new Error(parsed);
  return parsed;
}

async function udpPeer(
  onMessage: (message: Buffer, reply: (bytes: Uint8Array) => void) => void,
): Promise<number> {
  const socket: Socket = createSocket('udp4');
  socket.on('message', (message, from) =>
    onMessage(message, (bytes) => socket.send(bytes, from.port, from.address)),
  );
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  closers.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return socket.address().port;
}

async function tcpPeer(onConnection: (socket: import('node:net').Socket) => void): Promise<number> {
  const tcp: Server = createServer(onConnection);
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  closers.push(() => new Promise<void>((resolve) => tcp.close(() => resolve())));
  const address = tcp.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

const query = (id: number): Uint8Array => new Uint8Array([id >> 8, id & 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

describe('nodeDnsTransport over UDP', () => {
  it("ignores datagrams without the query's ID and resolves with the first one that has it", async () => {
    const port = await udpPeer((message, reply) => {
      reply(new Uint8Array([message[0]! ^ 0xff, message[1]!, 0xaa]));
      reply(new Uint8Array([message[0]!, message[1]!, 0xbb]));
    });
    const answer = await nodeDnsTransport.exchange({
      server: server('127.0.0.1', port),
      protocol: 'udp',
      message: query(0x1234),
      signal: new AbortController().signal,
    });
    expect([...answer]).toEqual([0x12, 0x34, 0xbb]);
  });

  it('rejects with ECONNREFUSED when nothing listens (the socket is connected)', async () => {
    const port = await udpPeer(() => {});
    const dead = server('127.0.0.1', port);
    await closers.pop()!();
    await expect(
      nodeDnsTransport.exchange({
        server: dead,
        protocol: 'udp',
        message: query(1),
        signal: new AbortController().signal,
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('rejects with the reason at once when aborted', async () => {
    const port = await udpPeer(() => {});
    const controller = new AbortController();
    const exchange = nodeDnsTransport.exchange({
      server: server('127.0.0.1', port),
      protocol: 'udp',
      message: query(1),
      signal: controller.signal,
    });
    const reason = new Error('enough');
    controller.abort(reason);
    await expect(exchange).rejects.toBe(reason);
  });
});

describe('nodeDnsTransport over TCP', () => {
  it('frames the query with its length and reassembles an answer sent one byte at a time', async () => {
    let received: Buffer | undefined;
    const port = await tcpPeer((socket) => {
      socket.once('data', async (data: Buffer) => {
        received = data;
        const answer = Buffer.from([0, 4, data[2]!, data[3]!, 7, 8]);
        for (const byte of answer) {
          socket.write(Buffer.from([byte]));
          await new Promise((resolve) => setImmediate(resolve));
        }
      });
    });
    const answer = await nodeDnsTransport.exchange({
      server: server('127.0.0.1', port),
      protocol: 'tcp',
      message: query(0x0102),
      signal: new AbortController().signal,
    });
    expect([...answer]).toEqual([1, 2, 7, 8]);
    expect([...(received ?? [])].slice(0, 4)).toEqual([0, 12, 1, 2]);
  });

  it('rejects when the server closes the connection before the whole answer', async () => {
    const port = await tcpPeer((socket) => {
      socket.once('data', () => socket.end(Buffer.from([0, 50, 1, 2])));
    });
    await expect(
      nodeDnsTransport.exchange({
        server: server('127.0.0.1', port),
        protocol: 'tcp',
        message: query(1),
        signal: new AbortController().signal,
      }),
    ).rejects.toThrow(/closed the TCP connection before its answer was complete/);
  });

  it('rejects with ECONNREFUSED when nothing listens', async () => {
    const port = await tcpPeer(() => {});
    await closers.pop()!();
    await expect(
      nodeDnsTransport.exchange({
        server: server('127.0.0.1', port),
        protocol: 'tcp',
        message: query(1),
        signal: new AbortController().signal,
      }),
    ).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

it('DNS_PORT is 53, the default of a server without a port', () => {
  expect(parseDnsServer('10.0.0.1')).toMatchObject({ port: DNS_PORT, text: '10.0.0.1:53', family: 4 });
  expect(parseDnsServer('::1')).toMatchObject({ port: DNS_PORT, text: '[::1]:53', family: 6 });
});
