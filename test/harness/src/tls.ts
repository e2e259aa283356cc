import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Paths of the PEM files made by {@link makeCertificates}. */
export interface Certificates extends AsyncDisposable {
  /** The directory holding every file. */
  dir: string;
  /** The test CA certificate (trust anchor for server and client certs). */
  caFile: string;
  /** Server certificate signed by the CA: SAN IP:127.0.0.1, DNS:localhost; EKU serverAuth + clientAuth. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate signed by the CA: CN=root, EKU clientAuth. */
  clientCertFile: string;
  clientKeyFile: string;
  /** An unrelated CA certificate (for wrong-CA tests). */
  otherCaFile: string;
  /** A client certificate (CN=root) signed by the unrelated CA (for wrong-client-cert tests). */
  otherClientCertFile: string;
  otherClientKeyFile: string;
  /** Removes `dir` (only when makeCertificates created it). Idempotent; also `[Symbol.asyncDispose]`. */
  close(): Promise<void>;
}

function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.env.OPENSSL_BIN || 'openssl', args, { cwd, timeout: 30_000 }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      ...EC,
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=sdkit-test-${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

async function makeLeaf(dir: string, name: string, ca: string, cn: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    ['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${ca}.crt`,
      '-CAkey',
      `${ca}.key`,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-out',
      `${name}.crt`,
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
}

/**
 * Generates, with openssl (`$OPENSSL_BIN` or `openssl` on PATH), a private CA, a server certificate for
 * 127.0.0.1/localhost, a client certificate (CN=root), and an unrelated CA with its own client certificate — all
 * EC P-256, valid 2 days — into `dir` (created if missing) or a fresh temp dir. `close()` removes the temp dir
 * (a caller-supplied `dir` is left alone). Rejects with openssl's stderr if a step fails.
 */
export async function makeCertificates(dir?: string): Promise<Certificates> {
  const owned = dir === undefined;
  const target = dir ?? (await mkdtemp(join(tmpdir(), 'sdkit-certs-')));
  if (!owned) await mkdir(target, { recursive: true });
  try {
    await Promise.all([makeCa(target, 'ca'), makeCa(target, 'other-ca')]);
    const leafExt = 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n';
    await Promise.all([
      makeLeaf(
        target,
        'server',
        'ca',
        'localhost',
        `${leafExt}extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n`,
      ),
      makeLeaf(target, 'client', 'ca', 'root', `${leafExt}extendedKeyUsage=clientAuth\n`),
      makeLeaf(target, 'other-client', 'other-ca', 'root', `${leafExt}extendedKeyUsage=clientAuth\n`),
    ]);
  } catch (err) {
    if (owned) await rm(target, { recursive: true, force: true });
    throw err;
  }
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed || !owned) return;
    closed = true;
    await rm(target, { recursive: true, force: true });
  };
  return {
    dir: target,
    caFile: join(target, 'ca.crt'),
    serverCertFile: join(target, 'server.crt'),
    serverKeyFile: join(target, 'server.key'),
    clientCertFile: join(target, 'client.crt'),
    clientKeyFile: join(target, 'client.key'),
    otherCaFile: join(target, 'other-ca.crt'),
    otherClientCertFile: join(target, 'other-client.crt'),
    otherClientKeyFile: join(target, 'other-client.key'),
    close,
    [Symbol.asyncDispose]: close,
  };
}
