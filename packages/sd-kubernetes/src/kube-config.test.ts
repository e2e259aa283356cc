import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesClientError } from './errors.js';
import { tempDir, writeKubeconfig } from './fixtures/kubeconfig.js';
import { resolveKubeConfig } from './kube-config.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

describe('resolveKubeConfig', () => {
  it('reads a kubeconfig file: server, context, user, namespace', () => {
    const d = dir();
    const path = writeKubeconfig(d, {
      server: 'http://127.0.0.1:1',
      namespace: 'shop',
      user: 'alice',
      token: 't',
    });
    const config = resolveKubeConfig({ kubeconfig: path }, {});
    expect(config).toMatchObject({
      server: 'http://127.0.0.1:1',
      namespace: 'shop',
      context: 'test',
      user: 'alice',
    });
    expect(config.tokenFile).toBeUndefined();
    expect(config.source).toContain(path);
  });

  it('defaults the namespace to "default"', () => {
    const path = writeKubeconfig(dir(), { server: 'http://127.0.0.1:1' });
    expect(resolveKubeConfig({ kubeconfig: path }, {}).namespace).toBe('default');
  });

  it("takes a user's tokenFile (kubectl's key; client-node's token-file too) relative to the kubeconfig", () => {
    const d = dir();
    mkdirSync(join(d, 'secrets'));
    writeFileSync(join(d, 'secrets', 'token'), 'abc');
    const path = writeKubeconfig(d, { server: 'http://127.0.0.1:1', tokenFile: 'secrets/token' });
    const config = resolveKubeConfig({ kubeconfig: path }, {});
    expect(config.tokenFile?.path).toBe(join(d, 'secrets', 'token'));
    expect(config.requestConfig.getCurrentUser()?.token).toBeFalsy();
    // client-node's spelling, whose file it would read once at load, relative to the working directory
    const raw = JSON.parse(readText(path));
    raw.users[0].user = { 'token-file': 'secrets/token' };
    writeFileSync(path, JSON.stringify(raw));
    expect(resolveKubeConfig({ kubeconfig: path }, {}).tokenFile?.path).toBe(join(d, 'secrets', 'token'));
  });

  it('selects a context, and names the contexts when it does not exist', () => {
    const d = dir();
    const path = writeKubeconfig(d, { server: 'http://127.0.0.1:1', context: 'one' });
    expect(() => resolveKubeConfig({ kubeconfig: path, context: 'two' }, {})).toThrow(
      /has no context "two" \(its contexts: "one"\)/,
    );
    expect(resolveKubeConfig({ kubeconfig: path, context: 'one' }, {}).context).toBe('one');
  });

  it('throws TypeError for an unreadable or invalid file, and for conflicting options', () => {
    const d = dir();
    expect(() => resolveKubeConfig({ kubeconfig: join(d, 'nope') }, {})).toThrow(TypeError);
    expect(() => resolveKubeConfig({ kubeconfig: join(d, 'nope') }, {})).toThrow(/cannot read kubeconfig/);
    writeFileSync(join(d, 'bad'), 'clusters: [');
    expect(() => resolveKubeConfig({ kubeconfig: join(d, 'bad') }, {})).toThrow(/not valid YAML/);
    expect(() => resolveKubeConfig({ kubeconfig: 'x', inCluster: true }, {})).toThrow(/not both/);
    expect(() => resolveKubeConfig({ kubeconfig: new KubeConfig(), context: 'c' }, {})).toThrow(
      /setCurrentContext/,
    );
    expect(() => resolveKubeConfig({ kubeconfig: 42 as never }, {})).toThrow(/kubeconfig must be a path/);
  });

  it('merges the KUBECONFIG files as kubectl does: first wins, missing files skipped', () => {
    const d = dir();
    const a = writeKubeconfig(d, { server: 'http://127.0.0.1:1', context: 'a', namespace: 'first' }, 'a');
    const b = writeKubeconfig(d, { server: 'http://127.0.0.1:2', context: 'b', namespace: 'second' }, 'b');
    const env = { KUBECONFIG: [join(d, 'missing'), a, b].join(':') };
    expect(resolveKubeConfig({}, env)).toMatchObject({
      context: 'a',
      server: 'http://127.0.0.1:1',
      namespace: 'first',
    });
    expect(resolveKubeConfig({ context: 'b' }, env)).toMatchObject({ context: 'b', namespace: 'second' });
    // both files name the cluster "test-cluster": the first one's wins
    expect(resolveKubeConfig({ context: 'b' }, env).server).toBe('http://127.0.0.1:1');
    const err = (() => {
      try {
        resolveKubeConfig({}, { KUBECONFIG: join(d, 'missing') });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(KubernetesClientError);
    expect(err).toMatchObject({ reason: 'config' });
  });

  it('falls back to ~/.kube/config, then to the service account, else says what it looked for', () => {
    const home = dir();
    mkdirSync(join(home, '.kube'));
    writeKubeconfig(join(home, '.kube'), { server: 'http://127.0.0.1:3' }, 'config');
    expect(resolveKubeConfig({}, { HOME: home }).server).toBe('http://127.0.0.1:3');
    const empty = dir();
    expect(() => resolveKubeConfig({}, { HOME: empty })).toThrow(KubernetesClientError);
    expect(() => resolveKubeConfig({}, { HOME: empty })).toThrow(/no Kubernetes configuration found/);
    const sa = serviceAccount('apps');
    expect(
      resolveKubeConfig(
        {},
        { HOME: empty, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' },
        sa,
      ).server,
    ).toBe('https://10.0.0.1:443');
  });

  it('in-cluster: the service host and port, the CA, a token file and the pod namespace', () => {
    const sa = serviceAccount('apps\n');
    const config = resolveKubeConfig(
      { inCluster: true },
      { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      sa,
    );
    expect(config).toMatchObject({ server: 'https://[fd00::1]:6443', namespace: 'apps', context: undefined });
    expect(config.tokenFile?.path).toBe(join(sa, 'token'));
    expect(config.kubeConfig.getCurrentCluster()?.caFile).toBe(join(sa, 'ca.crt'));
    expect(() => resolveKubeConfig({ inCluster: true }, {}, sa)).toThrow(/KUBERNETES_SERVICE_HOST/);
    expect(() =>
      resolveKubeConfig(
        { inCluster: true },
        { KUBERNETES_SERVICE_HOST: 'h', KUBERNETES_SERVICE_PORT: '1' },
        dir(),
      ),
    ).toThrow(/token does not exist/);
  });

  it("replaces the tokenFile auth provider of client-node's in-cluster user with a token file", () => {
    const root = dir();
    const sa = join(root, 'var/run/secrets/kubernetes.io/serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), 't');
    writeFileSync(join(sa, 'ca.crt'), '');
    writeFileSync(join(sa, 'namespace'), 'apps');
    const kc = withEnv({ KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '6443' }, () => {
      const k = new KubeConfig();
      k.loadFromCluster(root);
      return k;
    });
    const config = resolveKubeConfig({ kubeconfig: kc }, {});
    expect(config.kubeConfig).toBe(kc);
    expect(config.tokenFile?.path).toBe(join(sa, 'token'));
    expect(config.requestConfig.getCurrentUser()?.authProvider).toBeUndefined();
    expect(kc.getCurrentUser()?.authProvider).toBeDefined(); // the caller's object is left alone
    expect(config.namespace).toBe('apps');
  });
});

function serviceAccount(namespace: string): string {
  const d = dir();
  writeFileSync(join(d, 'token'), 'token');
  writeFileSync(join(d, 'ca.crt'), '');
  writeFileSync(join(d, 'namespace'), namespace);
  return d;
}

function withEnv<T>(env: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
