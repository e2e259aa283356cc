import type { RuntimeRecord } from './scripts/protocol.js';

/** Parses one output line into a record, or undefined when it is not one (a runtime's own log line). */
export function parseRecord(line: string): RuntimeRecord | undefined {
  const text = line.trim();
  if (!text.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(text) as { type?: unknown };
    return typeof value === 'object' && value !== null && typeof value.type === 'string'
      ? (value as RuntimeRecord)
      : undefined;
  } catch {
    return undefined;
  }
}
