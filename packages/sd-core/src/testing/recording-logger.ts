import type { Logger } from '../types.js';

/** One call of a {@link RecordingLogger}: the level, the object and the message as passed. */
export interface LogRecord {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  /** Absent when the call passed no message. */
  readonly msg?: string;
}

/** A {@link Logger} that keeps every call, in order, for assertions on what sdkit logs. */
export interface RecordingLogger extends Logger {
  readonly records: LogRecord[];
}

/** Makes a {@link RecordingLogger}: pass it as `logger` and assert on `records` (e.g. that no secret was logged). */
export function recordingLogger(): RecordingLogger {
  const records: LogRecord[] = [];
  const at =
    (level: LogRecord['level']) =>
    (obj: object, msg?: string): void => {
      const o = obj as Record<string, unknown>;
      records.push(msg === undefined ? { level, obj: o } : { level, obj: o, msg });
    };
  return { records, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
