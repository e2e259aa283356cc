/**
 * The `watch` scenario over plain `fetch` against etcd's grpc-gateway (`/v3/kv/range`, then a streaming
 * `/v3/watch`), with no sdkit code: a canary for the runtime itself (its streaming `fetch`, the bundling, workerd's
 * configuration), so that a failure of the sdkit scenarios in one runtime can be told apart from a broken runtime
 * set-up. Portable: `fetch`, `TextEncoder`/`TextDecoder`, `btoa`/`atob` — nothing else.
 * @module
 */
import type { Emit, Scenarios, WatchParams } from './protocol.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

function fromBase64(text: string | undefined): string {
  if (!text) return '';
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return decoder.decode(bytes);
}

/** The exclusive end of the range of keys starting with `prefix`. */
function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = prefix.slice();
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.slice(0, i + 1);
    }
  }
  return new Uint8Array([0]);
}

interface GatewayKv {
  key?: string;
  value?: string;
}

async function post<T>(endpoint: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`${endpoint}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`POST ${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Yields the newline-separated JSON messages of a streaming gateway response. */
async function* jsonLines(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader();
  let buffered = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffered += decoder.decode(value, { stream: true });
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield JSON.parse(line);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

async function watch(params: WatchParams, emit: Emit, signal: AbortSignal): Promise<void> {
  const endpoint = params.endpoints[0]!;
  const prefix = encoder.encode(params.prefix);
  const key = toBase64(prefix);
  const rangeEnd = toBase64(prefixEnd(prefix));
  const values = new Map<string, string>();
  const report = (): void => {
    const keys = [...values.keys()].sort();
    emit({ type: 'instances', keys, addresses: keys.map((k) => values.get(k)!) });
  };

  const range = await post<{ header: { revision: string }; kvs?: GatewayKv[] }>(
    endpoint,
    '/v3/kv/range',
    { key, range_end: rangeEnd },
    signal,
  );
  for (const kv of range.kvs ?? []) values.set(fromBase64(kv.key), fromBase64(kv.value));
  report();

  const startRevision = String(BigInt(range.header.revision) + 1n);
  const res = await fetch(`${endpoint}/v3/watch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ create_request: { key, range_end: rangeEnd, start_revision: startRevision } }),
    signal,
  });
  if (!res.ok || !res.body) throw new Error(`POST /v3/watch: HTTP ${res.status}`);
  try {
    for await (const message of jsonLines(res.body)) {
      const m = message as {
        error?: unknown;
        result?: { canceled?: boolean; events?: Array<{ type?: string; kv: GatewayKv }> };
      };
      if (m.error || !m.result) throw new Error(`watch failed: ${JSON.stringify(m).slice(0, 300)}`);
      if (m.result.canceled) throw new Error(`watch canceled: ${JSON.stringify(m.result).slice(0, 300)}`);
      const events = m.result.events ?? [];
      for (const e of events) {
        const k = fromBase64(e.kv.key);
        if (e.type === 'DELETE') values.delete(k);
        else values.set(k, fromBase64(e.kv.value));
      }
      if (events.length > 0) report();
    }
  } catch (err) {
    if (signal.aborted) return;
    throw err;
  }
  if (!signal.aborted) throw new Error('the watch stream ended');
}

/** The stand-in implementation. */
export const standin: Scenarios = { name: 'stand-in (plain fetch)', watch };
