/** Decoding responses: the fields lookups use, truncation, and robustness against damaged messages. */

import { FakeClock } from '@sdkit/sd-core/testing';
import packet from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DnsError } from './dns-error.js';
import { lookup } from './dns-lookup.js';
import { decodeResponse, encodeQuery } from './dns-message.js';
import { type DnsServer, parseDnsServer } from './dns-server.js';
import { srv } from './fixtures/fake-dns-transport.js';

function response(id: number, extra: Partial<packet.Packet> = {}): Buffer {
  return packet.encode({
    type: 'response',
    id,
    flags: packet.RECURSION_AVAILABLE,
    questions: [{ type: 'SRV', name: '_x._tcp.example', class: 'IN' }],
    answers: [srv('_x._tcp.example', 'a.example', 8080, { ttl: 42, priority: 1, weight: 2 })],
    ...extra,
  });
}

describe('encodeQuery / decodeResponse', () => {
  it('a query asks one question, recursion desired, with EDNS(0) advertising 1232 bytes', () => {
    const decoded = packet.decode(
      Buffer.from(encodeQuery({ id: 7, name: 'api.example.', type: 'AAAA', edns: true })),
    );
    expect(decoded).toMatchObject({
      id: 7,
      type: 'query',
      flag_rd: true,
      questions: [{ name: 'api.example', type: 'AAAA' }],
    });
    expect(decoded.additionals).toMatchObject([{ type: 'OPT', udpPayloadSize: 1232 }]);
    const plain = packet.decode(
      Buffer.from(encodeQuery({ id: 7, name: 'api.example.', type: 'A', edns: false })),
    );
    expect(plain.additionals).toEqual([]);
  });

  it('reads the ID, RCODE, question and SRV data', () => {
    expect(decodeResponse(response(9))).toEqual({
      id: 9,
      rcode: 0,
      truncated: false,
      question: { name: '_x._tcp.example', type: 'SRV' },
      answers: [
        {
          type: 'SRV',
          name: '_x._tcp.example',
          ttl: 42,
          priority: 1,
          weight: 2,
          port: 8080,
          target: 'a.example',
        },
      ],
      authorities: [],
    });
  });

  it('a truncated answer is read from its header only (it may be cut anywhere after it)', () => {
    const bytes = Buffer.from(response(3));
    bytes.writeUInt16BE(bytes.readUInt16BE(2) | packet.TRUNCATED_RESPONSE, 2);
    expect(decodeResponse(bytes.subarray(0, 20))).toMatchObject({ id: 3, truncated: true, answers: [] });
  });

  it.each([
    [new Uint8Array(5), /shorter than a header/],
    [encodeQuery({ id: 1, name: 'x.', type: 'A', edns: false }), /a query, not a response/],
    [Buffer.from(response(1)).subarray(0, 40), /cannot decode the response/],
  ])('refuses a damaged message (%#)', (bytes, message) => {
    expect(() => decodeResponse(bytes)).toThrow(message);
  });

  it('any damage to an answer gives records or a DnsError, never another exception (property)', async () => {
    const server = parseDnsServer('127.0.0.1:53') as DnsServer;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.nat(),
        async (flips, cut) => {
          const settings = {
            servers: () => [server],
            clock: new FakeClock(),
            timeoutMs: 1_000,
            transport: {
              exchange: async ({ message }: { message: Uint8Array }) => {
                const bytes = Buffer.from(response((message[0]! << 8) | message[1]!));
                // Keep the ID, damage the rest, maybe cut it short.
                for (const [at, value] of flips) bytes[2 + (at % (bytes.length - 2))] = value;
                return bytes.subarray(0, bytes.length - (cut % 8));
              },
            },
          };
          try {
            const answer = await lookup('_x._tcp.example.', 'SRV', settings, new AbortController().signal);
            for (const r of answer.records) expect(r.type).toBe('SRV');
          } catch (error) {
            expect(error).toBeInstanceOf(DnsError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
