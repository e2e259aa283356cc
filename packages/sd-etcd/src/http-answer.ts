/**
 * What etcd's HTTP gateway answered to one POST, read and decoded, and every way that can fail as an
 * {@link EtcdHttpError}: an error body, an error line in a stream, a watch refused at creation, an answer that is
 * not JSON or not what was asked, no answer at all. The messages start with the call (`etcd <endpoint>: POST
 * <path>`, the `where` of each function) and never contain a token or a password. Portable.
 * @internal
 * @packageDocumentation
 */
import { EtcdHttpError, kindOf } from './etcd-http-error.js';
import { decodeErrorBody, decodeStreamError, type WireError } from './http-wire.js';
import { NdjsonReader } from './ndjson-reader.js';
import type { EtcdErrorKind } from './transport.js';

const NOOP = (): void => {};

/** `etcd <endpoint>: POST <path>`, for a call that may not have been sent. */
export function describeCall(endpoint: string | undefined, path: string): string {
  return `etcd ${endpoint ?? '(not sent)'}: POST ${path}`;
}

/** The error of a call that did not run because the transport is closed (or closed while it ran). */
export function closedError(path: string): EtcdHttpError {
  return new EtcdHttpError(`etcd client closed: POST ${path} not done`, { kind: 'closed', path });
}

/** What a person can do about errors of some kinds. */
function hint(kind: EtcdErrorKind): string {
  switch (kind) {
    case 'missing-credentials':
      return '; etcd has authentication enabled: give a username and password';
    case 'authentication-failed':
      return '; wrong username or password';
    case 'permission-denied':
      return "; the user's roles do not allow this";
    default:
      return '';
  }
}

/** The error of a failed unary answer (status >= 300) from its body. */
export function errorFromBody(
  status: number,
  text: string,
  endpoint: string,
  path: string,
  where: string,
): EtcdHttpError {
  const { code, message } = decodeErrorBody(text);
  const kind = kindOf(code, status, message);
  const codes = code === undefined ? `HTTP ${status}` : `gRPC code ${code}, HTTP ${status}`;
  return new EtcdHttpError(`${where}: ${message ?? 'no message'} (${codes})${hint(kind)}`, {
    kind,
    code,
    status,
    etcdMessage: message,
    endpoint,
    path,
  });
}

/** The error of a `{"error":{…}}` line in a stream (e.g. `transport is closing` when etcd shuts down). */
function streamFailure(value: unknown, endpoint: string, path: string, where: string): EtcdHttpError {
  const { code, message, httpCode } = decodeStreamError(value);
  const kind = kindOf(code, httpCode, message);
  const codes = code === undefined ? '' : ` (gRPC code ${code})`;
  return new EtcdHttpError(
    `${where}: etcd ended the stream: ${message ?? 'no message'}${codes}${hint(kind)}`,
    {
      kind,
      code,
      status: undefined,
      etcdMessage: message,
      endpoint,
      path,
    },
  );
}

/** The error of a watch whose create response was canceled with an `rpc error` reason (see `decodeCancelReason`). */
export function watchRefusal(
  refused: WireError,
  endpoint: string,
  path: string,
  where: string,
): EtcdHttpError {
  const kind = kindOf(refused.code, undefined, refused.message);
  return new EtcdHttpError(
    `${where}: etcd refused the watch: ${refused.message} (gRPC code ${refused.code})${hint(kind)}`,
    { kind, code: refused.code, etcdMessage: refused.message, endpoint, path },
  );
}

/** `text` parsed; text that is not JSON is an error (kind `other`) quoting its start. */
export function parseJson(text: string, endpoint: string, path: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new EtcdHttpError(`${where}: answer is not JSON: ${JSON.stringify(shown)}`, {
      kind: 'other',
      endpoint,
      path,
      cause: error,
    });
  }
}

/** `decode(value)`; what it throws becomes an `unexpected answer` error (kind `other`). */
export function decoded<T>(
  decode: (value: unknown) => T,
  value: unknown,
  endpoint: string,
  path: string,
  where: string,
): T {
  try {
    return decode(value);
  } catch (error) {
    throw new EtcdHttpError(`${where}: unexpected answer: ${messageOf(error)}`, {
      kind: 'other',
      endpoint,
      path,
      cause: error,
    });
  }
}

/** The body of a streamed answer; an answer without one is an error (kind `other`). */
export function bodyOf(
  res: Response,
  endpoint: string,
  path: string,
  where: string,
): ReadableStream<Uint8Array> {
  if (!res.body)
    throw new EtcdHttpError(`${where}: answer without a body`, { kind: 'other', endpoint, path });
  return res.body;
}

/** The `result` of one line of a stream; a line carrying an `error` throws it. */
export function resultOf(line: string, endpoint: string, path: string, where: string): unknown {
  const message = parseJson(line, endpoint, path, where) as Record<string, unknown>;
  if (message.error !== undefined) throw streamFailure(message.error, endpoint, path, where);
  return message.result;
}

/** The `result` of the first JSON line of a streamed answer; the rest of the answer is dropped. */
export async function firstLine(
  res: Response,
  endpoint: string,
  path: string,
  where: string,
): Promise<unknown> {
  const reader = bodyOf(res, endpoint, path, where).getReader();
  const lines = new NdjsonReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const line = done ? lines.end() : lines.push(value)[0];
      if (line !== undefined) return resultOf(line, endpoint, path, where);
      if (done) {
        throw new EtcdHttpError(`${where}: etcd ended the answer without a message`, {
          kind: 'unavailable',
          endpoint,
          path,
        });
      }
    }
  } finally {
    reader.cancel().catch(NOOP);
  }
}

/** Any failure of a call as an {@link EtcdHttpError}: anything `fetch` or a body read threw means no answer. */
export function toEtcdError(
  error: unknown,
  endpoint: string | undefined,
  path: string,
  where: string,
): EtcdHttpError {
  if (error instanceof EtcdHttpError) return error;
  const detail = describeFetchError(error);
  return new EtcdHttpError(`${endpoint === undefined ? describeCall(endpoint, path) : where}: ${detail}`, {
    kind: 'unavailable',
    endpoint,
    path,
    cause: error,
  });
}

/** `fetch failed (connect ECONNREFUSED 127.0.0.1:2379)`: the error and what its causes say. */
function describeFetchError(error: unknown): string {
  const parts: string[] = [];
  let e: unknown = error;
  for (let depth = 0; depth < 4 && e !== undefined && e !== null; depth++) {
    const text = messageOf(e);
    if (text !== '' && !parts.includes(text)) parts.push(text);
    e = typeof e === 'object' ? (e as { cause?: unknown }).cause : undefined;
  }
  if (parts.length === 0) return 'no answer';
  return parts.length === 1 ? parts[0]! : `${parts[0]} (${parts.slice(1).join(': ')})`;
}

/** A one-line text for any thrown value: its message, else its code, else the messages of an AggregateError. */
export function messageOf(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const e = error as { message?: unknown; code?: unknown; errors?: unknown };
  if (typeof e.message === 'string' && e.message !== '') return e.message;
  if (Array.isArray(e.errors) && e.errors.length > 0) return e.errors.map(messageOf).join('; ');
  if (typeof e.code === 'string') return e.code;
  return String(error);
}
