/**
 * One lookup of one name and type: ask the servers in order, over UDP then TCP when truncated, follow CNAMEs, and
 * say how long the answer may be kept. Failures are {@link DnsError}s.
 * @module
 */
import { randomInt } from 'node:crypto';
import type { Clock } from '@sdkit/sd-core';
import { DnsError, type DnsErrorKind, rcodeKind, rcodeName } from './dns-error.js';
import {
  type DnsQueryType,
  type DnsRecord,
  type DnsResponse,
  decodeResponse,
  encodeQuery,
} from './dns-message.js';
import { canonicalDnsName, sameDnsName } from './dns-name.js';
import type { DnsServer } from './dns-server.js';
import type { DnsTransport } from './dns-transport.js';

/** What a lookup needs besides the question. */
export interface LookupSettings {
  /** The servers to ask, in order; asked at each lookup (the system's may change). */
  readonly servers: () => readonly DnsServer[];
  readonly transport: DnsTransport;
  readonly clock: Clock;
  /** Longest wait for each exchange (UDP, and TCP after a truncated answer) with one server. */
  readonly timeoutMs: number;
}

/** The records a lookup found, and for how long they may be kept. */
export interface DnsAnswer<R extends DnsRecord = DnsRecord> {
  /** The records of the type asked for, at the end of the CNAME chain; empty for a NOERROR answer without any. */
  readonly records: readonly R[];
  /**
   * How long the answer may be kept, in ms: the smallest TTL of the records and of the CNAMEs that led to them;
   * for an empty answer, the negative-caching TTL of the zone's SOA (RFC 2308: the smaller of its TTL and its
   * `minimum`); `undefined` when an empty answer carries no SOA.
   */
  readonly ttlMs: number | undefined;
  /** The server that answered, `host:port`. */
  readonly server: string;
}

/** Longest CNAME chain followed, as BIND and most resolvers bound it. */
const MAX_CNAMES = 8;

/** The records of type `type` a lookup returns. */
export type RecordOf<T extends DnsQueryType> = Extract<DnsRecord, { type: T }>;

/**
 * Looks `name` (absolute) up: asks each server in order until one answers — an answer with records, without any
 * (NOERROR/NODATA) or NXDOMAIN is final; SERVFAIL, REFUSED, other RCODEs, timeouts, unreachable servers and
 * unreadable answers move on to the next server. Follows CNAMEs (asking again for a target the answer does not
 * cover), at most {@link MAX_CNAMES}.
 * @throws DnsError when every server failed (the first server's error, with all of them as `attempts`) or the
 *   name does not exist; the `signal`'s reason when it is aborted.
 */
export async function lookup<T extends DnsQueryType>(
  name: string,
  type: T,
  settings: LookupSettings,
  signal: AbortSignal,
): Promise<DnsAnswer<RecordOf<T>>> {
  const question = { name, type };
  const seen = new Set([canonicalDnsName(name)]);
  let ttl = Number.POSITIVE_INFINITY;
  let current = name;
  for (;;) {
    const { response, server } = await askServers({ name: current, type, question, settings, signal });
    let owner = current;
    for (;;) {
      const found = response.answers.filter(
        (r): r is RecordOf<T> => r.type === type && sameDnsName(r.name, owner),
      );
      if (found.length > 0) {
        for (const r of found as readonly DnsRecord[]) ttl = Math.min(ttl, r.ttl);
        return { records: found, ttlMs: ttl * 1000, server: server.text };
      }
      const cname = response.answers.find(
        (r): r is Extract<DnsRecord, { type: 'CNAME' }> => r.type === 'CNAME' && sameDnsName(r.name, owner),
      );
      if (cname === undefined) break;
      ttl = Math.min(ttl, cname.ttl);
      owner = cname.target;
      const canonical = canonicalDnsName(owner);
      if (seen.has(canonical)) {
        throw dnsError('malformed', question, `the CNAME chain loops at ${owner}.`, { server });
      }
      seen.add(canonical);
      if (seen.size > MAX_CNAMES + 1) {
        throw dnsError('malformed', question, `the CNAME chain is longer than ${MAX_CNAMES}`, { server });
      }
    }
    if (sameDnsName(owner, current)) {
      const negative = negativeTtl(response);
      const limit = Math.min(ttl, negative ?? Number.POSITIVE_INFINITY);
      return { records: [], ttlMs: Number.isFinite(limit) ? limit * 1000 : undefined, server: server.text };
    }
    // The answer ends in a CNAME whose target it does not cover (an authoritative server for another zone).
    current = `${owner}.`;
  }
}

/** RFC 2308: a negative answer may be kept for the smaller of its SOA's TTL and the SOA's `minimum`. */
function negativeTtl(response: DnsResponse): number | undefined {
  for (const r of response.authorities) if (r.type === 'SOA') return Math.min(r.ttl, r.minimum);
  return undefined;
}

interface Question {
  readonly name: string;
  readonly type: DnsQueryType;
}

/** One question to the servers: the name asked now (a CNAME target, later) and what errors name. */
interface Ask {
  readonly name: string;
  readonly type: DnsQueryType;
  /** The lookup's own question, which every error message names. */
  readonly question: Question;
  readonly settings: LookupSettings;
  readonly signal: AbortSignal;
}

async function askServers(ask: Ask): Promise<{ response: DnsResponse; server: DnsServer }> {
  const { question } = ask;
  const servers = ask.settings.servers();
  if (servers.length === 0) {
    throw new DnsError(
      'no-servers',
      `${prefix(question)}no DNS server to ask (the system reports none; pass servers)`,
      { question: question.name, type: question.type },
    );
  }
  const errors: DnsError[] = [];
  for (const server of servers) {
    try {
      return { response: await askServer(server, ask), server };
    } catch (error) {
      if (ask.signal.aborted || !(error instanceof DnsError)) throw error;
      if (error.kind === 'nxdomain') throw error;
      errors.push(error);
    }
  }
  const first = errors[0]!;
  if (errors.length === 1) throw first;
  const each = errors.map((e) => e.message.slice(prefix(question).length)).join('; ');
  throw new DnsError(first.kind, `${prefix(question)}every server failed: ${each}`, {
    question: question.name,
    type: question.type,
    ...(first.server === undefined ? {} : { server: first.server }),
    ...(first.rcode === undefined ? {} : { rcode: first.rcode }),
    attempts: errors,
  });
}

async function askServer(server: DnsServer, ask: Ask): Promise<DnsResponse> {
  const { question } = ask;
  let edns = true;
  for (;;) {
    const id = randomInt(0x10000);
    const message = encodeQuery({ id, name: ask.name, type: ask.type, edns });
    let response = await exchange(server, 'udp', message, id, ask);
    if (response.truncated) {
      response = await exchange(server, 'tcp', message, id, ask);
      if (response.truncated) {
        throw dnsError('malformed', question, `${server.text} sent a truncated answer over TCP`, { server });
      }
    }
    // FORMERR to a query with EDNS: a server from before EDNS (RFC 6891 §7). Ask once more without it.
    if (response.rcode === 1 && edns) {
      edns = false;
      continue;
    }
    if (response.rcode !== 0) {
      const kind = rcodeKind(response.rcode);
      const what = kind === 'nxdomain' ? ' (no such name)' : '';
      throw dnsError(kind, question, `${server.text} answered ${rcodeName(response.rcode)}${what}`, {
        server,
        rcode: response.rcode,
      });
    }
    return response;
  }
}

/** Sends one query to one server over one protocol, within `timeoutMs`, and checks the response. */
async function exchange(
  server: DnsServer,
  protocol: 'udp' | 'tcp',
  message: Uint8Array,
  id: number,
  ask: Ask,
): Promise<DnsResponse> {
  const { question, settings, signal } = ask;
  const controller = new AbortController();
  const onStop = (): void => controller.abort(signal.reason);
  signal.addEventListener('abort', onStop, { once: true });
  let timedOut = false;
  const cancel = settings.clock.setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('timed out'));
  }, settings.timeoutMs);
  const over = protocol === 'tcp' ? ' over TCP' : '';
  let bytes: Uint8Array;
  try {
    bytes = await settings.transport.exchange({ server, protocol, message, signal: controller.signal });
  } catch (error) {
    if (signal.aborted) throw signal.reason;
    if (timedOut) {
      const text = `no answer from ${server.text}${over} within ${settings.timeoutMs} ms`;
      throw dnsError('timeout', question, text, { server });
    }
    if (error instanceof DnsError) throw error;
    const code = (error as { code?: unknown } | null)?.code;
    const why = typeof code === 'string' ? code : error instanceof Error ? error.message : String(error);
    throw dnsError('unreachable', question, `${server.text} is unreachable${over} (${why})`, {
      server,
      cause: error,
    });
  } finally {
    cancel();
    signal.removeEventListener('abort', onStop);
  }
  let response: DnsResponse;
  try {
    response = decodeResponse(bytes);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    const text = `${server.text} sent an answer that cannot be read${over}: ${why}`;
    throw dnsError('malformed', question, text, { server, cause: error });
  }
  if (response.id !== id) {
    const text = `${server.text} answered another query${over} (ID ${response.id}, not ${id})`;
    throw dnsError('malformed', question, text, { server });
  }
  const asked = response.question;
  if (asked !== undefined && (asked.type !== ask.type || !sameDnsName(asked.name, ask.name))) {
    const text = `${server.text} answered another question${over} (${asked.type} ${asked.name}.)`;
    throw dnsError('malformed', question, text, { server });
  }
  return response;
}

function prefix(question: Question): string {
  return `DNS ${question.type} ${question.name}: `;
}

function dnsError(
  kind: DnsErrorKind,
  question: Question,
  text: string,
  details: { server: DnsServer; cause?: unknown; rcode?: number },
): DnsError {
  return new DnsError(kind, `${prefix(question)}${text}`, {
    question: question.name,
    type: question.type,
    server: details.server.text,
    ...(details.cause === undefined ? {} : { cause: details.cause }),
    ...(details.rcode === undefined ? {} : { rcode: details.rcode }),
  });
}
