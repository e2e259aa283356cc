/**
 * A whole (non-watch) response body of the API server — a list page, an error `Status` — read within the
 * client's request timeout.
 * @internal
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Clock } from '@sdkit/sd-core';
import { readBody, TransportError } from './http-transport.js';

/** A list page or error body larger than this is refused (a bound against a misbehaving server, not a limit met). */
const MAX_BODY_BYTES = 256 * 1024 * 1024;

/**
 * Reads a whole (non-watch) body within the request timeout `ms` (`clock`'s), rejecting with a
 * {@link TransportError} (`'network'`) past it, past {@link MAX_BODY_BYTES} or when the connection breaks.
 */
export async function readBounded(res: IncomingMessage, ms: number, clock: Clock): Promise<Buffer> {
  const cancel = clock.setTimeout(() => {
    res.destroy(
      new TransportError('network', `the API server did not send the whole response within ${ms} ms`),
    );
  }, ms);
  try {
    return await readBody(res, MAX_BODY_BYTES);
  } finally {
    cancel();
  }
}
