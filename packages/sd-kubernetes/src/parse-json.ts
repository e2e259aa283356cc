/**
 * JSON from the API server (a list page, a watch event line, a `Status` body), without throwing.
 * @internal
 * @module
 */

/** `text` (a Buffer as UTF-8) parsed as JSON, or `null` if it is not JSON. */
export function parseJson(text: string | Buffer): unknown {
  try {
    return JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch {
    return null;
  }
}
