import type { Instancer } from '@sdkit/sd-core';
import type * as SdDns from '@sdkit/sd-dns';
import type { Backend, BackendRequest, PreparedTarget } from './backend.js';
import { usageError } from './cli-error.js';
import { loadBackendPackage } from './load-backend-package.js';

/**
 * DNS, through @sdkit/sd-dns: `dns+srv://[SERVER/]_service._proto.name.` (SRV records) and
 * `dns://[SERVER/]name:port` (A/AAAA records); SERVER, when given, is the DNS server to ask (an IP address with an
 * optional port), else the system's resolvers are. sd-dns' `parseDnsTarget` checks the target. Read-only:
 * `register` is refused.
 */
export const dnsBackend: Backend = Object.freeze({
  schemes: Object.freeze(['dns+srv', 'dns']),
  packageName: '@sdkit/sd-dns',
  flags: Object.freeze([] as const),
  forms: Object.freeze([
    'dns+srv://[SERVER[:PORT]/]_SERVICE._PROTO.NAME.  (SRV records)',
    'dns://[SERVER[:PORT]/]NAME[:PORT]  (A and AAAA records; port 443 by default)',
  ]),
  registers: false,
  async prepare(request: BackendRequest): Promise<PreparedTarget> {
    const sdDns = await loadBackendPackage(
      '@sdkit/sd-dns',
      request.target.scheme,
      () => import('@sdkit/sd-dns'),
    );
    let parsed: SdDns.DnsTarget;
    try {
      parsed = sdDns.parseDnsTarget(request.target.text);
    } catch (err) {
      throw usageError((err as Error).message);
    }
    const asked = parsed.servers === undefined ? "the system's resolvers" : parsed.servers.join(', ');
    const what =
      parsed.kind === 'srv'
        ? `SRV records of ${parsed.name}`
        : `A and AAAA records of ${parsed.name}, port ${parsed.port}`;
    return {
      description: `DNS: ${what}, asking ${asked}`,
      emptyHint: undefined,
      connect: async () => ({
        follow: (): Instancer =>
          sdDns.dnsInstancerForTarget(request.target.text, {
            logger: request.logger,
            // --dial-timeout bounds each DNS exchange.
            ...(request.dialTimeoutMs !== undefined ? { timeoutMs: request.dialTimeoutMs } : {}),
          }),
        close: () => {},
        [Symbol.dispose]: () => {},
      }),
    };
  },
});
