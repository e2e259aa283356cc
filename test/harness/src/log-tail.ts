/**
 * The tail of a child process's log file, for failure messages.
 * @module
 */
import { readFile } from 'node:fs/promises';

/** Lines longer than this are cut (with `…`) so one huge line cannot drown a failure message. */
const MAX_LINE_CHARS = 500;

/** The last `lines` lines of `file`, each cut at 500 characters; `''` when the file is empty or unreadable. */
export async function tailLines(file: string, lines = 30): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .map((l) => (l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l))
      .join('\n');
  } catch {
    return '';
  }
}

/** `--- <file> (tail) ---` and then {@link tailLines} of `file`, or `(empty)`: the log section of a failure message. */
export async function logTail(file: string, lines = 30): Promise<string> {
  return `--- ${file} (tail) ---\n${(await tailLines(file, lines)) || '(empty)'}`;
}
