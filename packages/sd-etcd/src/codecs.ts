import type { Instance, Logger } from '@sdkit/sd-core';
import { compareBytes } from './transport.js';

/**
 * How an etcd value becomes an {@link Instance} and back: the wire format of a service entry.
 *
 * Contract for implementations:
 * - `decode(key, value)` gets the **full etcd key** (as the client addresses it: it includes the watched prefix,
 *   and is relative to the client's namespace if the client has one) and the **raw value bytes** (any bytes:
 *   etcd stores whatever was put, so expect invalid UTF-8, JSON of any shape, empty and very large values). It
 *   returns
 *   - an `Instance` whose `key` is exactly `key` and whose `address` is a non-empty string of at most
 *     {@link MAX_ADDRESS_LENGTH} characters (the instancer skips any other result, with a warning), or
 *   - `undefined` when the value is well-formed but deliberately not an endpoint (e.g. an etcd-naming entry with
 *     `"Op":1`); the instancer skips it and logs at debug level, or
 *   - throws (any `Error`) when the value cannot be read; the instancer skips that key and logs a warning naming
 *     the key and the codec (the logged reason is cut to a few hundred characters, so keep value contents out
 *     of its start). Either way other instances are unaffected, and a key whose value becomes unreadable leaves
 *     the set.
 * - `encode(instance)` returns the value string to store under `instance.key`. Throws `TypeError` if the
 *   instance cannot be represented (empty or over-long address, metadata that is not an object or not JSON). For every instance `i` that
 *   `encode` accepts, `decode(i.key, encode(i))` equals `i` (same key, address and metadata).
 *
 * Codecs are stateless and shareable. Write your own by implementing this interface.
 */
export interface Codec {
  /** Short name for logs (`gokit`, `etcdNaming`, `json`, `auto`). */
  readonly name: string;
  /** Reads one entry; see {@link Codec} for the contract (return, `undefined`, or throw). */
  decode(key: string, value: Uint8Array): Instance | undefined;
  /** Writes one entry; see {@link Codec}. */
  encode(instance: Instance): string;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/**
 * The longest `address` (in UTF-16 code units, `string.length`) the built-in codecs read or write, and the
 * longest the instancer accepts from any codec: 8192, far above any URL or `host:port` (a DNS name is at most
 * 253 characters), so a longer one is garbage (e.g. a blob stored under the prefix by mistake) and is skipped
 * rather than handed to endpoint factories and loggers.
 */
export const MAX_ADDRESS_LENGTH = 8192;

/** Builds the frozen instance a codec returns; `metadata` only when present. */
function makeInstance(key: string, address: string, metadata: Record<string, unknown> | undefined): Instance {
  if (address === '') throw new Error('the address is empty');
  if (address.length > MAX_ADDRESS_LENGTH) {
    throw new Error(
      `the address is ${address.length} characters long (at most ${MAX_ADDRESS_LENGTH}); not an endpoint address`,
    );
  }
  return Object.freeze(
    metadata === undefined ? { key, address } : { key, address, metadata: Object.freeze(metadata) },
  );
}

function assertEncodable(instance: Instance): void {
  if (typeof instance?.address !== 'string' || instance.address === '') {
    throw new TypeError(
      `sdkit: cannot encode instance ${JSON.stringify(instance?.key)}: address must be a non-empty string (got ${JSON.stringify(instance?.address)})`,
    );
  }
  if (instance.address.length > MAX_ADDRESS_LENGTH) {
    throw new TypeError(
      `sdkit: cannot encode instance ${JSON.stringify(instance.key)}: its address is ${instance.address.length} characters long (at most ${MAX_ADDRESS_LENGTH})`,
    );
  }
  const md: unknown = instance.metadata;
  if (md !== undefined && (md === null || typeof md !== 'object' || Array.isArray(md))) {
    throw new TypeError(
      `sdkit: cannot encode instance ${JSON.stringify(instance.key)}: metadata must be an object or absent, got ${md === null ? 'null' : Array.isArray(md) ? 'an array' : `a ${typeof md}`}`,
    );
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function hasMetadata(
  instance: Instance,
): instance is Instance & { metadata: Readonly<Record<string, unknown>> } {
  return instance.metadata !== undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// gokit
// ---------------------------------------------------------------------------------------------------------------

/**
 * go-kit's `sd/etcdv3` format: the value **is** the instance string, e.g. `http://1.2.3.4:8080`, exactly as
 * go-kit's Registrar writes `Service.Value`. The address is the value as-is (no trimming); instances have no
 * metadata. Empty values, values that are not valid UTF-8 and values longer than {@link MAX_ADDRESS_LENGTH}
 * characters are unreadable. `encode` writes `instance.address`
 * (metadata is not representable and is dropped).
 */
const gokit: Codec = Object.freeze({
  name: 'gokit',
  decode(key: string, value: Uint8Array): Instance {
    let address: string;
    try {
      address = strictUtf8.decode(value);
    } catch {
      throw new Error('the value is not valid UTF-8');
    }
    return makeInstance(key, address, undefined);
  },
  encode(instance: Instance): string {
    assertEncodable(instance);
    return instance.address;
  },
});

// ---------------------------------------------------------------------------------------------------------------
// etcdNaming
// ---------------------------------------------------------------------------------------------------------------

/**
 * The value of grpc-go's (legacy) `naming.Update` as etcd's `clientv3/naming` `GRPCResolver.Update` stores it:
 * Go's `json.Marshal` of `struct { Op Operation; Addr string; Metadata interface{} }` — no JSON tags, no
 * `omitempty` — so the fields are always `Op`, `Addr`, `Metadata`, in that order, and a nil Metadata is `null`:
 * `{"Op":0,"Addr":"1.2.3.4:50051","Metadata":null}`.
 *
 * Decoding (as Go's `json.Unmarshal` reads it): field names match case-insensitively (an exact match is not
 * required), the last duplicate wins, unknown fields are ignored, invalid UTF-8 becomes U+FFFD.
 * - `Op` absent or `0` (Add): an endpoint. `Op: 1` (Delete): a valid entry that is not an endpoint → `undefined`
 *   (etcd's own resolver never writes it; deletion is a key delete). Any other `Op` is unreadable.
 * - `Addr` must be a non-empty string; it becomes `address`.
 * - `Metadata`: `null`/absent → no metadata; a JSON object → `metadata` is that object; any other JSON value
 *   (string, number, boolean, array) → `metadata` is `{ metadata: <value> }`.
 *
 * Encoding is byte-identical to Go's `json.Marshal` (Go ≥ 1.22) of the same `naming.Update{Op: naming.Add, …}`:
 * `Op` is always `0`; `Metadata` is `null` when the instance has none, the raw value when the metadata is exactly
 * `{ metadata: <non-object> }` (the inverse of decoding), and the object otherwise; object keys are sorted by their
 * UTF-8 bytes (Go sorts map keys); `<`, `>`, `&`, U+2028 and U+2029 are escaped as `\u003c`… (Go's HTML-safe
 * escaping); lone surrogates become `\ufffd`; `-0` is `-0`. Throws `TypeError` for metadata that Go could not
 * marshal either (non-finite numbers, bigint, functions, symbols).
 */
const etcdNaming: Codec = Object.freeze({
  name: 'etcdNaming',
  decode(key: string, value: Uint8Array): Instance | undefined {
    const parsed = parseJson(value);
    if (!isPlainObject(parsed)) throw new Error('the value is not a JSON object');
    return namingFromObject(key, parsed);
  },
  encode(instance: Instance): string {
    assertEncodable(instance);
    let metadata: unknown = null;
    if (hasMetadata(instance)) {
      const md = instance.metadata;
      const keys = Object.keys(md);
      const raw = md.metadata;
      const unwrap = keys.length === 1 && keys[0] === 'metadata' && raw != null && !isPlainObject(raw);
      metadata = unwrap ? raw : md;
    }
    return `{"Op":0,"Addr":${goString(instance.address)},"Metadata":${goJson(metadata, instance.key)}}`;
  },
});

function namingFromObject(key: string, obj: Record<string, unknown>): Instance | undefined {
  // Go's decoder: exact field name or case-insensitive match; later keys overwrite earlier ones.
  let op: unknown = 0;
  let addr: unknown;
  let metadata: unknown = null;
  for (const [k, v] of Object.entries(obj)) {
    const lower = k.toLowerCase();
    if (lower === 'op') op = v;
    else if (lower === 'addr') addr = v;
    else if (lower === 'metadata') metadata = v;
  }
  if (op === 1) return undefined;
  if (op !== 0 && op !== null)
    throw new Error(`unknown Op ${clip(JSON.stringify(op), 40)} (expected 0 = Add or 1 = Delete)`);
  if (typeof addr !== 'string') throw new Error('Addr is missing or not a string');
  let md: Record<string, unknown> | undefined;
  if (metadata === null || metadata === undefined) md = undefined;
  else if (isPlainObject(metadata)) md = metadata;
  else md = { metadata };
  return makeInstance(key, addr, md);
}

/** Go's `encodeState.string` with HTML escaping (the `json.Marshal` default), over JS strings. */
function goString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x20) {
      esc =
        c === 0x08
          ? '\\b'
          : c === 0x0c
            ? '\\f'
            : c === 0x0a
              ? '\\n'
              : c === 0x0d
                ? '\\r'
                : c === 0x09
                  ? '\\t'
                  : `\\u00${c.toString(16).padStart(2, '0')}`;
    } else if (c === 0x22) esc = '\\"';
    else if (c === 0x5c) esc = '\\\\';
    else if (c === 0x3c) esc = '\\u003c';
    else if (c === 0x3e) esc = '\\u003e';
    else if (c === 0x26) esc = '\\u0026';
    else if (c === 0x2028) esc = '\\u2028';
    else if (c === 0x2029) esc = '\\u2029';
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++; // a valid pair: copied raw
        continue;
      }
      esc = '\\ufffd';
    } else if (c >= 0xdc00 && c <= 0xdfff) esc = '\\ufffd';
    if (esc !== undefined) {
      out += s.slice(start, i) + esc;
      start = i + 1;
    }
  }
  return `${out}${s.slice(start)}"`;
}

const utf8 = new TextEncoder();
function compareUtf8(a: string, b: string): number {
  return compareBytes(utf8.encode(a), utf8.encode(b));
}

/** Go's `json.Marshal` of the `interface{}` value JSON decoding would give (maps with sorted keys). */
function goJson(value: unknown, key: string, depth = 0): string {
  if (depth > 1000) throw new TypeError(`sdkit: metadata of ${JSON.stringify(key)} is nested too deeply`);
  if (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { toJSON?: unknown }).toJSON === 'function'
  ) {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError(`sdkit: metadata of ${JSON.stringify(key)} holds a non-finite number (${value})`);
      }
      // Go formats float64 like ES Number#toString (the same shortest round-trip digits and exponent rules).
      return Object.is(value, -0) ? '-0' : String(value);
    case 'string':
      return goString(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map((v) => goJson(v ?? null, key, depth + 1)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
      entries.sort(([a], [b]) => compareUtf8(a, b));
      return `{${entries.map(([k, v]) => `${goString(k)}:${goJson(v, key, depth + 1)}`).join(',')}}`;
    }
    default:
      throw new TypeError(
        `sdkit: metadata of ${JSON.stringify(key)} holds a ${typeof value}, which is not JSON`,
      );
  }
}

function parseJson(value: Uint8Array): unknown {
  const text = lenientUtf8.decode(value);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`the value is not JSON (${(e as Error).message})`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// json
// ---------------------------------------------------------------------------------------------------------------

/**
 * sdkit's own JSON format: `{"address":"http://1.2.3.4:8080","metadata":{"zone":"a"}}`.
 * - `address` (required): non-empty string.
 * - `metadata` (optional): a JSON object; `null` or absent means none. Any other type is unreadable.
 * - Other fields are ignored (room for later versions). Field names are case-sensitive.
 *
 * `encode` writes `address` then `metadata` (omitted when the instance has none) with `JSON.stringify`'s
 * formatting (so `-0` is written as `0`); it throws `TypeError` for metadata that is not JSON (non-finite numbers, bigint, functions…)
 * instead of silently changing it.
 */
const json: Codec = Object.freeze({
  name: 'json',
  decode(key: string, value: Uint8Array): Instance {
    const parsed = parseJson(value);
    if (!isPlainObject(parsed)) throw new Error('the value is not a JSON object');
    return jsonFromObject(key, parsed);
  },
  encode(instance: Instance): string {
    assertEncodable(instance);
    if (!hasMetadata(instance)) return JSON.stringify({ address: instance.address });
    assertJsonValue(instance.metadata, instance.key, 0);
    return JSON.stringify({ address: instance.address, metadata: instance.metadata });
  },
});

function jsonFromObject(key: string, obj: Record<string, unknown>): Instance {
  const { address, metadata } = obj;
  if (typeof address !== 'string') throw new Error('"address" is missing or not a string');
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) {
    throw new Error('"metadata" is not a JSON object');
  }
  return makeInstance(key, address, metadata ?? undefined);
}

function assertJsonValue(value: unknown, key: string, depth: number): void {
  if (depth > 1000) throw new TypeError(`sdkit: metadata of ${JSON.stringify(key)} is nested too deeply`);
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return;
    throw new TypeError(`sdkit: metadata of ${JSON.stringify(key)} holds a non-finite number (${value})`);
  }
  if (typeof value === 'object') {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return;
    if (Array.isArray(value)) {
      for (const v of value) assertJsonValue(v ?? null, key, depth + 1);
      return;
    }
    for (const v of Object.values(value)) if (v !== undefined) assertJsonValue(v, key, depth + 1);
    return;
  }
  throw new TypeError(`sdkit: metadata of ${JSON.stringify(key)} holds a ${typeof value}, which is not JSON`);
}

// ---------------------------------------------------------------------------------------------------------------
// auto
// ---------------------------------------------------------------------------------------------------------------

/**
 * Reads all three formats, so one instancer can follow a prefix that go-kit services, etcd-naming (gRPC) services
 * and sdkit registrars write to:
 * - a value whose first non-whitespace byte is `{` is parsed as JSON: an object with an `Addr` field (any case,
 *   as Go reads it) is read as {@link codecs.etcdNaming}, else one with an `address` field as {@link codecs.json};
 *   anything else is unreadable;
 * - any other value is a {@link codecs.gokit} instance string.
 *
 * `encode` writes the gokit string when the instance has no metadata (readable by go-kit too) and the address
 * does not itself start with `{`; otherwise the {@link codecs.json} form, so `auto` always reads back what it wrote.
 */
const auto: Codec = Object.freeze({
  name: 'auto',
  decode(key: string, value: Uint8Array): Instance | undefined {
    if (!startsWithBrace(value)) return gokit.decode(key, value);
    const parsed = parseJson(value);
    if (!isPlainObject(parsed)) throw new Error('the value starts with "{" but is not a JSON object');
    if (Object.keys(parsed).some((k) => k.toLowerCase() === 'addr')) return namingFromObject(key, parsed);
    if (Object.hasOwn(parsed, 'address')) return jsonFromObject(key, parsed);
    throw new Error('a JSON object with neither "Addr" (etcd naming) nor "address" (sdkit json)');
  },
  encode(instance: Instance): string {
    assertEncodable(instance);
    if (!hasMetadata(instance) && !/^[ \t\r\n]*\{/.test(instance.address)) return gokit.encode(instance);
    return json.encode(instance);
  },
});

function startsWithBrace(value: Uint8Array): boolean {
  for (const b of value) {
    if (b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d) continue;
    return b === 0x7b;
  }
  return false;
}

/**
 * The built-in {@link Codec}s:
 * - `gokit` — value = the instance string (`http://1.2.3.4:8080`), as go-kit's `sd/etcdv3` writes it;
 * - `etcdNaming` — `{"Op":0,"Addr":"1.2.3.4:50051","Metadata":…}`, as etcd's `clientv3/naming` and the etcd docs'
 *   `etcdctl put my-service/1.2.3.4 '{"Addr":…}'` write it (key `<target>/<addr>`);
 * - `json` — sdkit's `{"address":"…","metadata":{…}}`;
 * - `auto` — reads all three (the {@link EtcdInstancer} default).
 */
export const codecs: Readonly<{ gokit: Codec; etcdNaming: Codec; json: Codec; auto: Codec }> = Object.freeze({
  gokit,
  etcdNaming,
  json,
  auto,
});

/** Longest `reason` {@link decodeEntry} returns (and {@link decodeAndLog} logs), in characters. @internal */
export const MAX_REASON_LENGTH = 300;
/** Longest key {@link decodeAndLog} logs, in characters (longer keys are cut, with their length). @internal */
export const MAX_LOGGED_KEY_LENGTH = 512;

/**
 * `text` cut to at most `max` characters plus a marker with the full length (`… (N characters)`), never
 * splitting a surrogate pair. @internal
 */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}… (${text.length} characters)`;
}

/** Outcome of {@link decodeEntry}. @internal */
export type DecodeOutcome =
  | { readonly ok: true; readonly instance: Instance }
  | { readonly ok: false; readonly reason: string; readonly warn: boolean };

/**
 * Runs `codec.decode` for the instancer and never throws: a throwing codec, a codec returning something that is
 * not a valid instance for `key` (wrong key, address empty, not a string or longer than
 * {@link MAX_ADDRESS_LENGTH}, metadata not an object), or `undefined` all become `{ ok: false, reason }` (`warn`
 * is false only for a deliberate `undefined`); `reason` is at most {@link MAX_REASON_LENGTH} characters (plus
 * the length marker of {@link clip}), so a codec that quotes the value cannot dump it. Logs nothing; see
 * {@link decodeAndLog}. @internal
 */
export function decodeEntry(codec: Codec, key: string, value: Uint8Array): DecodeOutcome {
  try {
    return checkDecoded(codec.decode(key, value), key);
  } catch (e) {
    // The codec threw, or (a custom codec) returned an object whose getters throw.
    return { ok: false, reason: clip(errorMessage(e), MAX_REASON_LENGTH), warn: true };
  }
}

function checkDecoded(result: unknown, key: string): DecodeOutcome {
  if (result === undefined) return { ok: false, reason: 'the entry is not an endpoint', warn: false };
  if (typeof result !== 'object' || result === null) {
    return { ok: false, reason: 'the codec returned something that is not an instance', warn: true };
  }
  const inst = result as Instance;
  if (inst.key !== key) {
    return {
      ok: false,
      reason: clip(
        `the codec returned an instance for another key (${safeString(inst.key)})`,
        MAX_REASON_LENGTH,
      ),
      warn: true,
    };
  }
  if (typeof inst.address !== 'string' || inst.address === '') {
    return { ok: false, reason: 'the codec returned an instance with no address', warn: true };
  }
  if (inst.address.length > MAX_ADDRESS_LENGTH) {
    return {
      ok: false,
      reason: `the codec returned an address of ${inst.address.length} characters (at most ${MAX_ADDRESS_LENGTH})`,
      warn: true,
    };
  }
  if (inst.metadata !== undefined && (typeof inst.metadata !== 'object' || inst.metadata === null)) {
    return { ok: false, reason: 'the codec returned metadata that is not an object', warn: true };
  }
  return { ok: true, instance: inst };
}

/** `String(v)`, or a placeholder when that throws (an object with a throwing `toString`, a revoked proxy…). */
function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return '(unprintable)';
  }
}

/** A thrown value's message, whatever was thrown. */
function errorMessage(e: unknown): string {
  try {
    return e instanceof Error ? safeString(e.message) : safeString(e);
  } catch {
    return '(unprintable)';
  }
}

/**
 * {@link decodeEntry}, logging each skipped entry once: `warn` (unreadable) or `debug` (not an endpoint) with
 * `{ key, codec, reason, valueBytes }`. The value itself is never logged (only its size); `key` is cut to
 * {@link MAX_LOGGED_KEY_LENGTH} characters and `reason` to {@link MAX_REASON_LENGTH}. Never throws, even if the
 * logger does. @internal
 */
export function decodeAndLog(
  codec: Codec,
  key: string,
  value: Uint8Array,
  logger: Logger,
): Instance | undefined {
  const out = decodeEntry(codec, key, value);
  if (out.ok) return out.instance;
  try {
    const fields = {
      key: clip(key, MAX_LOGGED_KEY_LENGTH),
      codec: clip(safeString(codec.name), 64),
      reason: out.reason,
      valueBytes: value.length,
    };
    if (out.warn) logger.warn(fields, 'sdkit: skipping an etcd entry that is not a readable instance');
    else logger.debug(fields, 'sdkit: skipping an etcd entry that is not an endpoint');
  } catch {
    // A logger (or a codec's name getter) that throws must not break the watch.
  }
  return undefined;
}
