import { silentLogger } from '@sdkit/sd-core';
import { describe, expect, it } from 'vitest';
import { memoryBackend } from './backend.js';
import { runScenario } from './scenario.js';

describe('demo scenario on the embedded registry', () => {
  it('keeps every call succeeding through a crash and a new instance', async () => {
    const backend = memoryBackend(silentLogger, 1);
    const lines: string[] = [];
    try {
      const result = await runScenario({ backend, callsPerPhase: 30, pauseMs: 0, log: (l) => lines.push(l) });
      expect(result.failures, result.failureSamples.join('\n')).toBe(0);
      // Each service served its phase, including the one that started late.
      for (const name of ['svc-a', 'svc-b', 'svc-c', 'svc-d'])
        expect(result.perService.get(name)).toBeGreaterThanOrEqual(30);
      expect(result.calls).toBe([...result.perService.values()].reduce((a, b) => a + b, 0));
      // The crashed service stayed registered until its TTL ran out, so some calls hit it and were retried.
      expect(result.retries).toBeGreaterThan(0);
      expect(lines.some((l) => l.includes("svc-b's registration expired"))).toBe(true);
    } finally {
      await backend.close();
    }
  }, 20_000);
});
