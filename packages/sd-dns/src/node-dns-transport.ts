import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import type { DnsExchange, DnsTransport } from './dns-transport.js';

/**
 * DNS over UDP and TCP with `node:dgram` and `node:net`, one socket per exchange, unref'd so that it never holds
 * the process, closed when the exchange settles or its signal is aborted.
 *
 * UDP sockets are connected to the server: the kernel then drops datagrams from anyone else, and a server that is
 * gone (ICMP port unreachable) fails the exchange at once with `ECONNREFUSED` instead of a timeout. Each socket
 * is bound to a fresh ephemeral port and each query has a random ID, so a forged answer must guess both.
 */
export const nodeDnsTransport: DnsTransport = Object.freeze({
  exchange(exchange: DnsExchange): Promise<Uint8Array> {
    return exchange.protocol === 'tcp' ? tcpExchange(exchange) : udpExchange(exchange);
  },
});

function udpExchange({ server, message, signal }: DnsExchange): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = createSocket(server.family === 6 ? 'udp6' : 'udp4');
    socket.unref();
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      try {
        socket.close();
      } catch {
        // already closed
      }
      fn();
    };
    const onAbort = (): void => settle(() => reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('error', (error) => settle(() => reject(error)));
    socket.on('message', (answer) => {
      // Not our query's ID: a late answer to an earlier query on a reused port, or a forgery. Keep waiting.
      if (answer.length >= 2 && answer[0] === message[0] && answer[1] === message[1]) {
        settle(() => resolve(answer));
      }
    });
    socket.connect(server.port, server.host, () => {
      if (settled) return;
      socket.send(message, (error) => {
        if (error) settle(() => reject(error));
      });
    });
  });
}

function tcpExchange({ server, message, signal }: DnsExchange): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const socket = connect({ host: server.host, port: server.port, family: server.family });
    socket.unref();
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      fn();
    };
    const onAbort = (): void => settle(() => reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    let received: Buffer = Buffer.alloc(0);
    socket.on('connect', () => {
      const framed = Buffer.alloc(2 + message.length);
      framed.writeUInt16BE(message.length, 0);
      framed.set(message, 2);
      socket.write(framed);
    });
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length >= 2 + length) settle(() => resolve(received.subarray(2, 2 + length)));
    });
    socket.on('error', (error) => settle(() => reject(error)));
    socket.on('close', () =>
      settle(() => reject(new Error('the server closed the TCP connection before its answer was complete'))),
    );
  });
}
