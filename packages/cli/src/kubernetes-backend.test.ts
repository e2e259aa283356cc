import { silentLogger } from '@sdkit/sd-core';
import { describe, expect, it } from 'vitest';
import type { BackendRequest } from './backend.js';
import { CliError } from './cli-error.js';
import { kubernetesBackend } from './kubernetes-backend.js';
import type { CliFlags } from './parse-command-line.js';
import { parseTarget } from './parse-target.js';

function request(text: string, flags: CliFlags = {}): BackendRequest {
  return {
    command: 'ls',
    target: parseTarget(text, ['kubernetes']),
    flags,
    dialTimeoutMs: undefined,
    env: {},
    readTextFile: () => '',
    logger: silentLogger,
  };
}

describe('kubernetes targets', () => {
  it("take kuberesolver's forms; --namespace fills in a namespace the target leaves out", async () => {
    const cases: Array<[string, CliFlags, string]> = [
      ['kubernetes:///cart.shop:8080', {}, 'Service "cart" in namespace "shop", port 8080'],
      ['kubernetes://shop/cart:http', {}, 'Service "cart" in namespace "shop", port "http"'],
      ['kubernetes://cart.shop.svc.cluster.local', {}, 'Service "cart" in namespace "shop", its first port'],
      ['kubernetes:///cart:grpc', {}, `Service "cart" in the context's namespace, port "grpc"`],
      ['kubernetes:///cart:grpc', { namespace: 'apps' }, 'Service "cart" in namespace "apps", port "grpc"'],
      [
        'kubernetes:///cart.apps',
        { namespace: 'apps' },
        'Service "cart" in namespace "apps", its first port',
      ],
    ];
    for (const [text, flags, description] of cases) {
      expect((await kubernetesBackend.prepare(request(text, flags))).description).toBe(
        `Kubernetes ${description}`,
      );
    }
  });

  it('refuse malformed targets and a namespace given twice, as usage errors', async () => {
    for (const [text, flags, message] of [
      ['kubernetes:///Cart', {}, /Invalid Kubernetes target "kubernetes:\/\/\/Cart"/],
      [
        'kubernetes:///cart.a',
        { namespace: 'b' },
        /namespace is given twice: "a" in the target and "b" with --namespace/,
      ],
      ['kubernetes:///cart', { namespace: 'Bad_NS' }, /--namespace: .*namespace/],
    ] as const) {
      const err = await kubernetesBackend.prepare(request(text, flags)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).kind).toBe('usage');
      expect((err as CliError).message).toMatch(message);
    }
  });
});
