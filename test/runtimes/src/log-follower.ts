import { type FSWatcher, watch } from 'node:fs';
import { open } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { parseRecord } from './parse-record.js';
import type { RecordLog } from './record-log.js';

/**
 * Feeds the records a process appends to `file` into `log`: reads on every change the kernel reports (fs.watch),
 * with a slow backstop read in case a notification is missed, and a last read on `stop()`.
 */
export class LogFollower {
  private offset = 0;
  private partial = '';
  private readonly decoder = new StringDecoder('utf8');
  private reading: Promise<void> = Promise.resolve();
  private readonly watcher: FSWatcher;
  private readonly backstop: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private readonly log: RecordLog,
  ) {
    this.watcher = watch(file, () => this.read());
    this.watcher.on('error', () => {});
    this.watcher.unref();
    this.backstop = setInterval(() => this.read(), 250);
    this.backstop.unref();
  }

  read(): Promise<void> {
    this.reading = this.reading.then(() => this.readNew()).catch(() => {}); // a vanished file: nothing more to read
    return this.reading;
  }

  private async readNew(): Promise<void> {
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.partial += this.decoder.write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
    const lines = this.partial.split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const record = parseRecord(line);
      if (record) this.log.push(record);
    }
  }

  async stop(): Promise<void> {
    this.watcher.close();
    clearInterval(this.backstop);
    await this.read();
  }
}
