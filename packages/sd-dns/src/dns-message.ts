/**
 * DNS messages on the wire (RFC 1035), through `dns-packet`: the one query this package sends and the parts of a
 * response it reads, in types of its own (no `dns-packet` type leaks out of this module).
 * @module
 */
import { isIPv4, isIPv6 } from 'node:net';
import packet from 'dns-packet';

/** The record types this package asks for. */
export type DnsQueryType = 'SRV' | 'A' | 'AAAA';

/** A resource record of a response, reduced to what the lookups use. Names have no trailing dot. */
export type DnsRecord =
  | {
      readonly type: 'SRV';
      readonly name: string;
      readonly ttl: number;
      readonly priority: number;
      readonly weight: number;
      readonly port: number;
      readonly target: string;
    }
  | { readonly type: 'A'; readonly name: string; readonly ttl: number; readonly address: string }
  | { readonly type: 'AAAA'; readonly name: string; readonly ttl: number; readonly address: string }
  | { readonly type: 'CNAME'; readonly name: string; readonly ttl: number; readonly target: string }
  | { readonly type: 'SOA'; readonly name: string; readonly ttl: number; readonly minimum: number }
  | { readonly type: 'other'; readonly name: string; readonly ttl: number };

/** A decoded response. */
export interface DnsResponse {
  readonly id: number;
  /** The 4-bit RCODE of the header (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, 5 REFUSED, …). */
  readonly rcode: number;
  /** TC: the answer did not fit in the UDP datagram; ask again over TCP. */
  readonly truncated: boolean;
  /** The question the response answers, if it repeats one. */
  readonly question: { readonly name: string; readonly type: string } | undefined;
  /** The answer section (records of class IN only). */
  readonly answers: readonly DnsRecord[];
  /** The authority section (records of class IN only): the SOA of a negative answer. */
  readonly authorities: readonly DnsRecord[];
}

/**
 * The UDP payload size this package advertises with EDNS(0): 1232 bytes, the size the DNS Flag Day 2020
 * recommends (fits the IPv6 minimum MTU without fragmentation). Larger answers come truncated and are asked again
 * over TCP.
 */
export const EDNS_UDP_PAYLOAD_SIZE = 1232;

/**
 * Encodes a standard query for `name` (absolute or not), type `type`, class IN, with recursion desired, and with
 * an EDNS(0) OPT record advertising {@link EDNS_UDP_PAYLOAD_SIZE} unless `edns` is false.
 */
export function encodeQuery(query: {
  readonly id: number;
  readonly name: string;
  readonly type: DnsQueryType;
  readonly edns: boolean;
}): Uint8Array {
  return packet.encode({
    type: 'query',
    id: query.id,
    flags: packet.RECURSION_DESIRED,
    questions: [{ type: query.type, class: 'IN', name: query.name }],
    additionals: query.edns
      ? [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: EDNS_UDP_PAYLOAD_SIZE,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ]
      : [],
  });
}

/**
 * Decodes a response message.
 * @throws Error with what is wrong when `bytes` is not a well-formed DNS response (too short, not a response,
 *   not a standard query's answer, a name or record that cannot be read, an A/AAAA/SRV/CNAME record with bad
 *   data).
 */
export function decodeResponse(bytes: Uint8Array): DnsResponse {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buffer.length < 12) throw new Error(`the response is ${buffer.length} bytes, shorter than a header`);
  const flags = buffer.readUInt16BE(2);
  if ((flags & 0x8000) === 0) throw new Error('the message is a query, not a response');
  const opcode = (flags >> 11) & 0xf;
  if (opcode !== 0) throw new Error(`the response has opcode ${opcode}, not QUERY (0)`);
  const id = buffer.readUInt16BE(0);
  const rcode = flags & 0xf;
  // A truncated answer may be cut anywhere after the header; only its header counts (it is asked again over TCP).
  if ((flags & packet.TRUNCATED_RESPONSE) !== 0) {
    return { id, rcode, truncated: true, question: undefined, answers: [], authorities: [] };
  }
  let decoded: packet.DecodedPacket;
  try {
    decoded = packet.decode(buffer);
  } catch (error) {
    throw new Error(`cannot decode the response (${error instanceof Error ? error.message : String(error)})`);
  }
  const question = decoded.questions?.[0];
  return {
    id,
    rcode,
    truncated: false,
    question: question === undefined ? undefined : { name: question.name, type: question.type },
    answers: records(decoded.answers),
    authorities: records(decoded.authorities),
  };
}

function records(answers: readonly packet.Answer[] | undefined): DnsRecord[] {
  const out: DnsRecord[] = [];
  for (const answer of answers ?? []) {
    if (answer.type === 'OPT') continue;
    if (answer.class !== undefined && answer.class !== 'IN') continue;
    out.push(record(answer));
  }
  return out;
}

function record(answer: Exclude<packet.Answer, packet.OptAnswer>): DnsRecord {
  const name = answer.name;
  const ttl = answer.ttl ?? 0;
  switch (answer.type) {
    case 'SRV': {
      const { priority, weight, port, target } = answer.data;
      if (typeof target !== 'string' || !isUint16(priority) || !isUint16(weight) || !isUint16(port)) {
        throw new Error(`the SRV record of ${JSON.stringify(name)} cannot be read`);
      }
      return { type: 'SRV', name, ttl, priority, weight, port, target };
    }
    case 'A':
    case 'AAAA': {
      const address = answer.data;
      if (typeof address !== 'string' || !(answer.type === 'A' ? isIPv4(address) : isIPv6(address))) {
        throw new Error(`the ${answer.type} record of ${JSON.stringify(name)} holds no address`);
      }
      return answer.type === 'A' ? { type: 'A', name, ttl, address } : { type: 'AAAA', name, ttl, address };
    }
    case 'CNAME':
      if (typeof answer.data !== 'string') {
        throw new Error(`the CNAME record of ${JSON.stringify(name)} cannot be read`);
      }
      return { type: 'CNAME', name, ttl, target: answer.data };
    case 'SOA':
      return { type: 'SOA', name, ttl, minimum: answer.data.minimum ?? 0 };
    default:
      return { type: 'other', name, ttl };
  }
}

function isUint16(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 0xffff;
}
