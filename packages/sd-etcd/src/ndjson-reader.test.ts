import { describe, expect, it } from 'vitest';
import { NdjsonReader } from './ndjson-reader.js';

const utf8 = new TextEncoder();

/** Runs `chunks` through a reader: every line, in order, the one `end()` returns last. */
function linesOf(chunks: readonly Uint8Array[]): string[] {
  const reader = new NdjsonReader();
  const lines: string[] = [];
  for (const chunk of chunks) lines.push(...reader.push(chunk));
  const last = reader.end();
  if (last !== undefined) lines.push(last);
  return lines;
}

/** `bytes` cut at the given offsets. */
function cut(bytes: Uint8Array, offsets: readonly number[]): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const at of [...offsets, bytes.length]) {
    chunks.push(bytes.subarray(start, at));
    start = at;
  }
  return chunks;
}

describe('NdjsonReader', () => {
  // Multi-byte characters of 2, 3 and 4 bytes, a line over many chunks, and a last line without a newline (as
  // etcd's gateway ends a watch: `{"error":{…}}` and no newline).
  const messages = [
    '{"result":{"created":true}}',
    '{"result":{"events":[{"kv":{"key":"é/€/😀"}}]}}',
    '{"result":{"x":"ü"}}',
    '{"error":{"grpc_code":14,"message":"transport is closing"}}',
  ];
  const bytes = utf8.encode(`${messages.join('\n')}`);

  it('splits lines at every single chunk boundary, including inside multi-byte UTF-8 characters', () => {
    let splitInsideCharacter = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && (bytes[i]! & 0xc0) === 0x80) splitInsideCharacter++;
      expect(linesOf(cut(bytes, [i])), `cut at ${i}`).toEqual(messages);
    }
    expect(splitInsideCharacter).toBeGreaterThanOrEqual(1 + 2 + 3 + 1); // é, €, 😀, ü
  });

  it('splits lines at every pair of chunk boundaries', () => {
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        expect(linesOf(cut(bytes, [i, j])), `cut at ${i}, ${j}`).toEqual(messages);
      }
    }
  });

  it('splits a stream delivered one byte per read, and one delivered whole', () => {
    const single = Array.from(bytes, (b) => Uint8Array.of(b));
    expect(linesOf(single)).toEqual(messages);
    expect(linesOf([bytes])).toEqual(messages);
  });

  it('returns the lines a push completes, at once, and keeps the rest for later', () => {
    const reader = new NdjsonReader();
    expect(reader.push(utf8.encode('{"a":1}\n{"b":'))).toEqual(['{"a":1}']);
    expect(reader.pendingLength).toBe(5);
    expect(reader.push(utf8.encode('2}'))).toEqual([]);
    expect(reader.push(utf8.encode('\n{"c":3}\n{"d":4}\n'))).toEqual(['{"b":2}', '{"c":3}', '{"d":4}']);
    expect(reader.pendingLength).toBe(0);
    expect(reader.end()).toBeUndefined();
  });

  it('drops a CR before the newline and skips empty lines', () => {
    expect(linesOf([utf8.encode('{"a":1}\r\n\n\r\n  \n{"b":2}\r\n')])).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('end() returns nothing for an empty stream, and push() after end() throws', () => {
    const reader = new NdjsonReader();
    expect(reader.end()).toBeUndefined();
    expect(reader.end()).toBeUndefined();
    expect(() => reader.push(utf8.encode('{}\n'))).toThrow(/after end/);
  });

  it('a character cut off by the end of the stream becomes U+FFFD', () => {
    const euro = utf8.encode('€');
    expect(linesOf([utf8.encode('{"a":"'), euro.subarray(0, 2)])).toEqual(['{"a":"\uFFFD']);
  });

  it('assembles one 2 MiB line from 64 KiB reads', () => {
    const line = `{"result":{"v":"${'x'.repeat(2 * 1024 * 1024)}"}}`;
    const big = utf8.encode(`${line}\n{"result":{}}\n`);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < big.length; i += 65536) chunks.push(big.subarray(i, i + 65536));
    expect(linesOf(chunks)).toEqual([line, '{"result":{}}']);
  });
});
