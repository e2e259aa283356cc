import type { Instancer, Logger } from '@sdkit/sd-core';
import { MemoryRegistry } from '@sdkit/sd-core';

/** One service's registration, as the demo drives it. */
export interface Announcement {
  /** Stops keeping the registration alive without removing it, as a SIGKILLed process would. */
  crash(): Promise<void>;
  /** Removes the registration at once (graceful shutdown). */
  deregister(): Promise<void>;
}

/** A discovery backend for the demo: where services announce themselves and where the client looks. */
export interface DemoBackend {
  /** Human-readable: which backend, and where. */
  readonly description: string;
  /** TTL of the registrations, in seconds: how long a crashed service stays visible. */
  readonly ttlSeconds: number;
  /** Registers `name` at `address`; resolves once it is visible. */
  announce(name: string, address: string): Promise<Announcement>;
  /** An instancer over every demo service. */
  instancer(): Instancer;
  /** Releases everything the backend started. */
  close(): Promise<void>;
}

/** Key prefix under which demo services register. */
export const DEMO_PREFIX = '/services/demo/';

/** The embedded, in-process registry: no server needed. */
export function memoryBackend(logger: Logger, ttlSeconds = 1): DemoBackend {
  const registry = new MemoryRegistry({ logger });
  return {
    description: 'embedded MemoryRegistry (in-process)',
    ttlSeconds,
    async announce(name, address) {
      const registrar = registry.registrar({ key: DEMO_PREFIX + name, address, ttlSeconds });
      await registrar.register();
      return {
        crash: async () => registrar.abandon(),
        deregister: () => registrar.deregister(),
      };
    },
    instancer: () => registry.instancer(DEMO_PREFIX),
    close: async () => registry.close(),
  };
}
