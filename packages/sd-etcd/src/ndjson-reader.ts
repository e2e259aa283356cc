/**
 * Splits a byte stream of newline-delimited JSON (etcd's HTTP gateway streams one JSON message per line) into
 * lines, whatever the chunking: a line may arrive over many reads, a read may carry several lines, and a
 * multi-byte UTF-8 character may be split between reads. Portable (TextDecoder only).
 * @internal
 * @packageDocumentation
 */

/**
 * An incremental NDJSON line splitter: feed it chunks with {@link NdjsonReader.push}, in order, and take the
 * complete lines each push returns; at the end of the stream, {@link NdjsonReader.end} returns the last line if it
 * had no newline. Lines are returned without their `\n` (and without a `\r` before it); empty lines are skipped.
 * The text is decoded as UTF-8 (invalid bytes become U+FFFD).
 */
export class NdjsonReader {
  readonly #decoder = new TextDecoder('utf-8');
  /** Text received after the last newline. */
  #partial = '';
  #ended = false;

  /** Adds the next chunk; returns the lines it completed (possibly none), in order. */
  push(chunk: Uint8Array): string[] {
    if (this.#ended) throw new Error('NdjsonReader: push() after end()');
    const text = this.#decoder.decode(chunk, { stream: true });
    if (text.length === 0) return [];
    let newline = text.indexOf('\n');
    if (newline < 0) {
      this.#partial += text;
      return [];
    }
    const lines: string[] = [];
    let start = 0;
    let head = this.#partial;
    while (newline >= 0) {
      add(lines, head + text.slice(start, newline));
      head = '';
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    this.#partial = text.slice(start);
    return lines;
  }

  /** Ends the stream: returns the last line if it had no newline (`undefined` if none). Later pushes throw. */
  end(): string | undefined {
    if (this.#ended) return undefined;
    this.#ended = true;
    const last = this.#partial + this.#decoder.decode();
    this.#partial = '';
    const lines: string[] = [];
    add(lines, last);
    return lines[0];
  }

  /** Characters received after the last newline (the size of the line being assembled). */
  get pendingLength(): number {
    return this.#partial.length;
  }
}

function add(lines: string[], line: string): void {
  const trimmed = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (trimmed.trim().length > 0) lines.push(trimmed);
}
