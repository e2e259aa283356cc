import type { Logger } from '@sdkit/sd-core';
import { type DemoBackend, memoryBackend } from './backend.js';

/**
 * Picks the demo's backend. `memory` always works; `etcd` needs ETCD_ENDPOINTS or an etcd binary; `auto` takes
 * etcd when one is available and says why it did not otherwise.
 */
export async function chooseBackend(
  choice: string,
  logger: Logger,
  say: (line: string) => void,
): Promise<DemoBackend> {
  if (choice !== 'memory' && choice !== 'auto' && choice !== 'etcd') {
    throw new TypeError(`--backend must be memory, etcd or auto (got ${JSON.stringify(choice)})`);
  }
  if (choice === 'etcd') throw new Error('the etcd backend of the demo is not built yet');
  if (choice === 'auto') say('(etcd mode is not built yet; using the embedded registry)');
  return memoryBackend(logger);
}
