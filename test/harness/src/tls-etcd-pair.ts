import { type EtcdServer, startEtcd } from './etcd.js';
import { type Certificates, makeCertificates } from './tls.js';

/** Two etcd servers over TLS with one private CA: `tls` verifies nothing of clients, `mtls` requires their certificate. */
export interface TlsEtcdPair extends AsyncDisposable {
  /** The CA, server, client and "other" (foreign CA) certificates both servers were made with. */
  readonly certs: Certificates;
  /** Serves https with the server certificate; any client may connect. */
  readonly tls: EtcdServer;
  /** Same, with `--client-cert-auth`: clients must present a certificate signed by `certs.caFile`. */
  readonly mtls: EtcdServer;
  /** Stops both servers and removes the certificates. Idempotent. */
  close(): Promise<void>;
}

/**
 * Makes a private CA and starts the two servers side by side (`<name>-tls` and `<name>-mtls`). If either fails to
 * start, whatever was started is stopped and the certificates removed before the error is thrown.
 */
export async function startTlsEtcdPair(name: string): Promise<TlsEtcdPair> {
  const certs = await makeCertificates();
  const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile };
  const started = await Promise.allSettled([
    startEtcd({ name: `${name}-tls`, tls }),
    startEtcd({ name: `${name}-mtls`, tls: { ...tls, clientCertAuth: true } }),
  ]);
  const servers = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await Promise.all(servers.map((s) => s.close()));
      await certs.close();
    })();
    return closing;
  };
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) {
    await close();
    throw failed.reason;
  }
  return { certs, tls: servers[0]!, mtls: servers[1]!, close, [Symbol.asyncDispose]: close };
}
