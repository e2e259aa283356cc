/**
 * The Kubernetes part of `pnpm bench`: starts the test API server, runs the propagation benchmark at 10, 1 000 and
 * 10 000 endpoints and the memory benchmark at 10 000, then stops the server (also when a benchmark throws).
 *
 * `main.ts` imports this module only when the section runs, after the etcd benchmarks: loading
 * `@sdkit/sd-kubernetes` loads `@kubernetes/client-node` (≈ 30 MB of heap, ≈ 0.5 s here), which the benchmarks
 * before it must not carry.
 */
import { createKubernetesClient } from '@sdkit/sd-kubernetes';
import { startBenchKube } from './kube-env.js';
import { benchKubeMemory, type KubeMemoryResult } from './kube-memory.js';
import {
  benchKubePropagation,
  type KubePropagationResult,
  kubePropagationService,
} from './kube-propagation.js';

/** Everything the Kubernetes section measured. */
export interface KubeResults {
  /** The API server's `gitVersion`. */
  readonly apiServer: string;
  readonly propagation: readonly KubePropagationResult[];
  readonly memory: KubeMemoryResult;
}

/** Endpoints per Service measured (100 per slice: 1, 10 and 100 slices). */
const SIZES = [10, 1_000, 10_000] as const;

/**
 * Runs the section: 200 measured writes per watcher and size (40 in quick mode). `done(what)` is called as each
 * part ends (for the progress log).
 */
export async function benchKubernetes(
  quick: boolean,
  say: (line: string) => void,
  done: (what: string) => void,
): Promise<KubeResults> {
  const kube = await startBenchKube();
  try {
    say(`kubernetes API server ${kube.version}`);
    const client = await createKubernetesClient({ kubeconfig: kube.kubeconfig });
    try {
      const propagation = await benchKubePropagation(kube, client, SIZES, quick ? 40 : 200, say);
      done('kubernetes propagation');
      // On the 10 000-endpoint Service the propagation benchmark populated (back at its populated size).
      const memory = await benchKubeMemory(kube, client, kubePropagationService(10_000), 10_000);
      done('kubernetes memory');
      return { apiServer: kube.version, propagation, memory };
    } finally {
      client.close();
    }
  } finally {
    await kube.close();
  }
}
