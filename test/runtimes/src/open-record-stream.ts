import http from 'node:http';
import { parseRecord } from './parse-record.js';
import { RecordLog } from './record-log.js';

/** An NDJSON response being read from a worker. */
export interface RecordStream extends AsyncDisposable {
  /** Its records (heartbeats left out). Ends when the response ends or the connection breaks. */
  readonly records: RecordLog;
  /** Closes the connection (the worker notices at its next write). Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

/** Reads `GET url` as NDJSON records (heartbeats left out); resolves once a 200 response's headers arrived. */
export function openRecordStream(
  url: string,
  source: string,
  context: () => Promise<string> = async () => '',
): Promise<RecordStream> {
  return new Promise((resolve, reject) => {
    const records = new RecordLog(source, context);
    const req = http.get(url, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', async () =>
          reject(new Error(`${source}: HTTP ${res.statusCode}: ${body.slice(0, 500)}\n${await context()}`)),
        );
        return;
      }
      let partial = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) {
          const record = parseRecord(line);
          if (record && record.type !== 'heartbeat') records.push(record);
        }
      });
      res.on('end', () => records.end('the response ended'));
      res.on('error', (err) => records.end(`the response broke: ${err.message}`));
      res.on('close', () => records.end('the connection closed'));
      let closing: Promise<void> | undefined;
      const close = (): Promise<void> => {
        closing ??= new Promise<void>((done) => {
          if (req.destroyed && res.destroyed) done();
          else {
            res.once('close', () => done());
            req.destroy();
          }
        });
        return closing;
      };
      resolve({ records, close, [Symbol.asyncDispose]: close });
    });
    req.on('error', async (err) =>
      reject(new Error(`${source}: ${err.message}\n${await context()}`, { cause: err })),
    );
  });
}
