import { retry, roundRobin } from '@sdkit/lb';
import { endpointer, type InstancerEvent } from '@sdkit/sd-core';
import { filter, firstValueFrom } from 'rxjs';
import type { Announcement, DemoBackend } from './backend.js';
import { httpFactory } from './http-endpoint.js';
import { type DemoService, startService } from './service.js';

/** How the scenario runs. */
export interface ScenarioOptions {
  /** Where services register and the client looks. */
  readonly backend: DemoBackend;
  /** Calls each service must have answered before the scenario moves on (default 200). */
  readonly callsPerPhase?: number;
  /** Concurrent callers (default 4). */
  readonly concurrency?: number;
  /** Pause of each caller between calls, in ms, to keep the pace readable (default 2). */
  readonly pauseMs?: number;
  /** Receives one line per thing that happens. */
  readonly log?: (line: string) => void;
}

/** What the client saw. */
export interface ScenarioResult {
  readonly calls: number;
  readonly failures: number;
  readonly retries: number;
  /** Calls answered, by service name. */
  readonly perService: ReadonlyMap<string, number>;
  /** First failure messages, if any (at most 5). */
  readonly failureSamples: readonly string[];
  readonly elapsedMs: number;
}

/**
 * The demo: three services register; a client composes instancer → endpointer → roundRobin → retry and calls them
 * continuously; one service crashes (its registration is left to expire); a new one starts; every call must still
 * succeed. Each step waits for what it needs (calls served, the registration gone), never for a fixed time.
 */
export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const { backend, callsPerPhase = 200, concurrency = 4, pauseMs = 2 } = options;
  const started = performance.now();
  const log = (line: string) =>
    options.log?.(`t=${((performance.now() - started) / 1000).toFixed(2)}s  ${line}`);

  const services = new Map<string, { service: DemoService; announcement: Announcement }>();
  const start = async (name: string) => {
    const service = await startService(name);
    const announcement = await backend.announce(name, service.address);
    services.set(name, { service, announcement });
    log(`started ${name} at ${service.address} and registered it (ttl ${backend.ttlSeconds}s)`);
  };
  for (const name of ['svc-a', 'svc-b', 'svc-c']) await start(name);

  const instancer = backend.instancer();
  const endpoints = endpointer(instancer, httpFactory);
  let retries = 0;
  const call = retry(roundRobin(endpoints), {
    maxAttempts: 3,
    timeoutMs: 2_000,
    perAttemptTimeoutMs: 500,
    onRetry: () => {
      retries++;
    },
  });
  const seen = (pred: (e: InstancerEvent) => boolean) => firstValueFrom(instancer.events$.pipe(filter(pred)));
  const names = (e: InstancerEvent) => e.instances.map((i) => i.key.slice(i.key.lastIndexOf('/') + 1));

  const first = await seen((e) => e.instances.length === 3);
  log(`client sees ${names(first).join(', ')}`);

  const perService = new Map<string, number>();
  const failureSamples: string[] = [];
  let calls = 0;
  let failures = 0;
  let running = true;
  let waiter: { pred: () => boolean; resolve: () => void } | undefined;
  const until = (pred: () => boolean) =>
    new Promise<void>((resolve) => {
      waiter = { pred, resolve };
    });
  const served = (name: string) => perService.get(name) ?? 0;

  const caller = async () => {
    while (running) {
      try {
        const reply = await call();
        perService.set(reply.id, served(reply.id) + 1);
      } catch (err) {
        failures++;
        if (failureSamples.length < 5) failureSamples.push(String((err as Error).message));
      }
      calls++;
      if (waiter?.pred()) {
        const { resolve } = waiter;
        waiter = undefined;
        resolve();
      }
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  };
  const progress = setInterval(() => {
    const per = [...perService].map(([n, c]) => `${n}=${c}`).join(' ');
    log(`calls=${calls} retries=${retries} failures=${failures}  ${per}`);
  }, 500);
  const callers = Array.from({ length: concurrency }, caller);

  try {
    await until(() => ['svc-a', 'svc-b', 'svc-c'].every((n) => served(n) >= callsPerPhase));
    log(`every service answered ${callsPerPhase}+ calls; crashing svc-b (no deregistration)`);
    const victim = services.get('svc-b')!;
    await victim.service.kill();
    await victim.announcement.crash();
    services.delete('svc-b');

    const gone = await seen((e) => !names(e).includes('svc-b'));
    log(`svc-b's registration expired; client sees ${names(gone).join(', ')}`);

    await start('svc-d');
    await until(() => served('svc-d') >= callsPerPhase);
    log(`svc-d answered ${callsPerPhase}+ calls`);
  } finally {
    running = false;
    clearInterval(progress);
    await Promise.all(callers);
    await endpoints.close();
    instancer.stop();
    for (const [name, { service, announcement }] of services) {
      await announcement.deregister();
      await service.kill();
      log(`deregistered and stopped ${name}`);
    }
  }
  return { calls, failures, retries, perService, failureSamples, elapsedMs: performance.now() - started };
}
