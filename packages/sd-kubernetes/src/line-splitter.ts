/**
 * Splits a byte stream into `\n`-terminated lines, whatever the chunk boundaries: a watch response is one JSON
 * object per line, and a socket read may end anywhere — inside a line, or inside a multi-byte UTF-8 character
 * (lines are decoded only once complete; `\n` never occurs inside a UTF-8 sequence).
 */
export class LineSplitter {
  readonly #maxLineBytes: number;
  #parts: Buffer[] = [];
  #pending = 0;

  /** @param maxLineBytes the longest line accepted, in bytes; {@link push} throws past it. */
  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
  }

  /** Bytes received after the last complete line. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Adds a chunk; returns the lines it completed (without `\n`, a trailing `\r` removed, empty lines left out).
   * @throws RangeError when a line grows past `maxLineBytes`.
   */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      let line: Buffer;
      if (this.#parts.length > 0) {
        this.#parts.push(piece);
        line = Buffer.concat(this.#parts, this.#pending + piece.length);
        this.#parts = [];
        this.#pending = 0;
      } else {
        line = piece;
      }
      if (line.length > this.#maxLineBytes) throw this.#tooLong(line.length);
      let end = line.length;
      if (end > 0 && line[end - 1] === 13) end--;
      if (end > 0) lines.push(line.toString('utf8', 0, end));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.#pending += rest.length;
      if (this.#pending > this.#maxLineBytes) throw this.#tooLong(this.#pending);
      this.#parts.push(rest);
    }
    return lines;
  }

  #tooLong(length: number): RangeError {
    return new RangeError(
      `a line of ${length} bytes or more, longer than the ${this.#maxLineBytes} accepted`,
    );
  }
}
