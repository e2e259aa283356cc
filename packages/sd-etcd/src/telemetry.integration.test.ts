/**
 * Telemetry end to end: registrars and an instancer on a real etcd, the OpenTelemetry SDK with its Prometheus
 * exporter on a free loopback port, scraped over HTTP as Prometheus would. The figures are checked against what
 * happened: instances registered, state changes, and the error and reconnect of an etcd restart.
 */
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { InstancerEvent } from '@sdkit/sd-core';
import {
  eventually,
  freePort,
  PortInUseError,
  startEtcd,
  startOnFreePorts,
  waitFor,
} from '@sdkit/test-harness';
import { describe, expect, it } from 'vitest';
import { createEtcdClient } from './client.js';
import { codecs } from './codecs.js';
import { EtcdInstancer } from './instancer.js';
import { EtcdRegistrar } from './registrar.js';

const WAIT = 20_000;

/** The Prometheus exporter's own HTTP server, on a free loopback port. */
async function startExporter(): Promise<{
  exporter: PrometheusExporter;
  url: string;
  close(): Promise<void>;
}> {
  return startOnFreePorts(
    async () => {
      const port = await freePort();
      const exporter = new PrometheusExporter({ host: '127.0.0.1', port, preventServerStart: true });
      return { exporter, url: `http://127.0.0.1:${port}/metrics`, close: () => exporter.stopServer() };
    },
    async ({ exporter }) => {
      await exporter.startServer().catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EADDRINUSE' ? new PortInUseError(err.message) : err;
      });
    },
  );
}

/** The samples of a scrape: `name{labels}` → value, labels as Prometheus writes them (sorted by the exporter). */
async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** The value of the one sample of `name` whose labels include every `labels` pair (`undefined` if none). */
function sample(
  samples: Map<string, number>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const matching = [...samples].filter(
    ([series]) =>
      (series === name || series.startsWith(`${name}{`)) &&
      Object.entries(labels).every(([k, v]) => series.includes(`${k}="${v}"`)),
  );
  expect(matching.length, `one series of ${name} with ${JSON.stringify(labels)}`).toBeLessThanOrEqual(1);
  return matching[0]?.[1];
}

describe('telemetry through the Prometheus exporter (real etcd, scraped over HTTP)', () => {
  it('shows the instances registered, the registrar states, and the error and reconnect of an etcd restart', async () => {
    await using etcd = await startEtcd({ name: 'telemetry' });
    const prometheus = await startExporter();
    const provider = new MeterProvider({ readers: [prometheus.exporter] });
    metrics.setGlobalMeterProvider(provider);
    try {
      await using services = await createEtcdClient({ endpoints: etcd.endpoints });
      await using watcher = await createEtcdClient({ endpoints: etcd.endpoints });
      const registrars = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'].map(
        (address) =>
          new EtcdRegistrar(services, {
            key: `/services/foo/${address}`,
            value: `http://${address}`,
            ttlSeconds: 5,
          }),
      );
      await Promise.all(registrars.map((r) => r.register()));
      using instancer = new EtcdInstancer(watcher, { prefix: '/services/foo/', codec: codecs.gokit });
      const count = (n: number) => (e: InstancerEvent) => !e.error && e.instances.length === n;
      await waitFor(instancer.events$, count(3), 'three instances', WAIT);

      const source = { sdkit_source_name: 'etcd', sdkit_source_target: '/services/foo/' };
      let samples = await scrape(prometheus.url);
      expect(sample(samples, 'sdkit_source_instance_count', source)).toBe(3);
      const states = { sdkit_source_name: 'etcd' };
      expect(
        sample(samples, 'sdkit_registrar_state_changes_total', {
          ...states,
          sdkit_registrar_state: 'registering',
        }),
      ).toBe(3);
      expect(
        sample(samples, 'sdkit_registrar_state_changes_total', {
          ...states,
          sdkit_registrar_state: 'registered',
        }),
      ).toBe(3);

      await registrars[0]!.deregister();
      await waitFor(instancer.events$, count(2), 'two instances', WAIT);
      samples = await scrape(prometheus.url);
      expect(sample(samples, 'sdkit_source_instance_count', source)).toBe(2);
      expect(
        sample(samples, 'sdkit_registrar_state_changes_total', {
          ...states,
          sdkit_registrar_state: 'deregistered',
        }),
      ).toBe(1);

      // etcd restarts (data kept): the watch fails (an error), then resumes (a reconnect); the set is kept.
      const events: InstancerEvent[] = [];
      const recording = instancer.events$.subscribe((e) => events.push(e));
      await etcd.restart();
      await eventually(
        async () => {
          const failedAt = events.findIndex((e) => e.error !== undefined);
          return failedAt >= 0 && events.slice(failedAt + 1).some(count(2));
        },
        'the watch failing, then back with the two instances',
        WAIT,
      );
      recording.unsubscribe();
      samples = await scrape(prometheus.url);
      expect(sample(samples, 'sdkit_source_errors_total', source)).toBeGreaterThanOrEqual(1);
      expect(sample(samples, 'sdkit_source_reconnects_total', source)).toBeGreaterThanOrEqual(1);
      expect(sample(samples, 'sdkit_source_instance_count', source)).toBe(2);
      await Promise.all(registrars.map((r) => r.deregister()));
    } finally {
      metrics.disable();
      await provider.shutdown();
      await prometheus.close();
    }
  });
});
