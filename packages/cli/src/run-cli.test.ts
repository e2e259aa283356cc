import { readdirSync, readFileSync } from 'node:fs';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { fakeIo } from './fixtures/fake-io.js';
import { loadBackendPackage } from './load-backend-package.js';
import { runCli } from './run-cli.js';

async function run(argv: string[], env: Record<string, string> = {}) {
  const io = fakeIo({ env });
  const code = await runCli(argv, io);
  return { code, stdout: io.stdout.text, stderr: io.stderr.text };
}

describe('runCli without a source', () => {
  it('prints the help on stdout and exits 0', async () => {
    const { code, stdout, stderr } = await run(['--help']);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^sdkit — /);
    for (const text of [
      'sdkit ls TARGET',
      'sdkit watch TARGET',
      'sdkit resolve TARGET',
      'sdkit register TARGET ADDRESS',
    ]) {
      expect(stdout).toContain(text);
    }
    expect(stdout).toContain('etcd://HOST:PORT[,HOST:PORT…]/PREFIX');
    expect(stdout).toContain('kubernetes:///SERVICE');
    expect(stdout).toMatch(/Exit status: 0 success; 1 the source failed/);
  });

  it("prints the package's version", async () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(await run(['--version'])).toEqual({ code: 0, stdout: `${pkg.version}\n`, stderr: '' });
  });

  it.each([
    [['ls'], /sdkit ls needs a TARGET/],
    [
      ['ls', 'consul://svc'],
      /unknown scheme "consul:\/\/"; the schemes are etcd, etcd\+http, kubernetes, dns\+srv, dns/,
    ],
    [['ls', 'dns+srv://_http._tcp.example.:80'], /an SRV target takes no port/],
    [
      ['register', 'dns+srv://_http._tcp.example.', '10.0.0.1:80'],
      /register works on etcd targets only: dns\+srv:\/\/ targets are read-only/,
    ],
    [['ls', 'dns:///api.example', '--kubeconfig', '/k'], /--kubeconfig is not taken by dns:\/\/ targets/],
    [
      ['register', 'kubernetes:///svc.ns:80', '10.0.0.1:80'],
      /register works on etcd targets only: kubernetes:\/\/ targets are read-only/,
    ],
    [
      ['ls', 'kubernetes:///svc', '--cacert', '/ca.pem'],
      /--cacert is not taken by kubernetes:\/\/ targets \(they take --kubeconfig, --context, --namespace\)/,
    ],
    [['ls', 'etcd:///svc', '-n', 'apps'], /--namespace is not taken by etcd:\/\/ targets/],
    [['ls', 'etcd:///svc', '--timeout', 'soon'], /--timeout must be a positive duration/],
    [['register', 'etcd:///svc', 'a:1', '--ttl', '0'], /--ttl must be a whole number/],
    [['register', 'etcd:///svc', 'a:1', '--metadata', '[1]'], /--metadata must be a JSON object/],
    [['register', 'etcd:///svc', 'a:1', '--metadata', '{zone'], /--metadata must be a JSON object such as/],
    [['ls', 'etcd://127.0.0.1:2379'], /names no key prefix/],
  ])(
    '%j is a usage error: exit 2, one line and a pointer to --help on stderr, nothing on stdout',
    async (argv, message) => {
      const { code, stdout, stderr } = await run(argv);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      const lines = stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^sdkit: /);
      expect(lines[0]).toMatch(message);
      expect(lines[1]).toBe("Run 'sdkit --help' for usage.");
    },
  );

  it('never echoes a password from the environment or a flag in its errors', async () => {
    const secret = 'Zq9-secret-Pa55';
    for (const [argv, env] of [
      [['ls', 'etcd:///x', `--user=alice:${secret}`], {}],
      [['ls', 'etcd:///x', `--password=${secret}`], {}],
      [['ls', `etcd://alice:${secret}@h:2379/x`], {}],
      [['ls', 'etcd:///x', '--user', 'bob'], { ETCDCTL_USER: `alice:${secret}` }],
    ] as const) {
      const { code, stderr } = await run([...argv], env);
      expect(code).toBe(2);
      expect(stderr).not.toContain(secret);
    }
  });
});

describe('backend packages', () => {
  it('are loaded only by dynamic import() of their package entry; the rest imports their types only', () => {
    const dir = new URL('.', import.meta.url);
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    const backend = /^@sdkit\/sd-(?!core)/;
    const staticImports: string[] = [];
    const dynamicImports: string[] = [];
    for (const file of sources) {
      const source = ts.createSourceFile(
        file,
        readFileSync(new URL(file, dir), 'utf8'),
        ts.ScriptTarget.Latest,
      );
      const visit = (node: ts.Node): void => {
        if (
          (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
          node.moduleSpecifier &&
          ts.isStringLiteral(node.moduleSpecifier) &&
          backend.test(node.moduleSpecifier.text)
        ) {
          const typeOnly = ts.isImportDeclaration(node)
            ? node.importClause?.isTypeOnly === true
            : node.isTypeOnly;
          if (!typeOnly) staticImports.push(`${file}: ${node.moduleSpecifier.text}`);
        }
        if (
          ts.isCallExpression(node) &&
          node.expression.kind === ts.SyntaxKind.ImportKeyword &&
          ts.isStringLiteral(node.arguments[0]!) &&
          backend.test((node.arguments[0] as ts.StringLiteral).text)
        ) {
          dynamicImports.push(`${file}: ${(node.arguments[0] as ts.StringLiteral).text}`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(staticImports).toEqual([]);
    expect(dynamicImports.sort()).toEqual([
      'dns-backend.ts: @sdkit/sd-dns',
      'etcd-backend.ts: @sdkit/sd-etcd',
      'kubernetes-backend.ts: @sdkit/sd-kubernetes',
    ]);
  });

  it('missing, give a clear error naming the package to install', async () => {
    const name = '@sdkit/not-installed-backend';
    const err = await loadBackendPackage(name, 'dns+srv', () => import(name)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).toMatchObject({
      kind: 'missing-backend',
      message: `dns+srv:// targets need the package ${name}, which is not installed: npm install ${name}`,
    });
  });
});
