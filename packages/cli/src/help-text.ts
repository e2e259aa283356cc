import { BACKENDS } from './backends.js';

/** What `sdkit --help` prints. */
export function helpText(): string {
  const forms = BACKENDS.flatMap((b) => b.forms.map((f) => `  ${f}`)).join('\n');
  return `sdkit — look at service discovery from a shell, and take part in it

Usage:
  sdkit ls TARGET                  list what the source has now: its first answer, as a table
  sdkit watch TARGET               follow changes: a live table on a terminal, else one JSON object per line
  sdkit resolve TARGET             wait until TARGET has instances, then print their addresses, one per line
  sdkit register TARGET ADDRESS    announce ADDRESS under TARGET until interrupted, then remove it (etcd only)

  ls answers at once, even with nothing (or an error) to show; resolve waits (up to --timeout) for at least one
  instance and an answer without error, and prints addresses only, for scripts:
      curl "http://$(sdkit resolve etcd://127.0.0.1:2379/my-service | head -1)/health"

Targets:
${forms}

  The etcd PREFIX is the target's path, verbatim, with a "/" added at the end if missing — as in gRPC's
  etcd:///my-service targets:
      etcd://127.0.0.1:2379/my-service        keys under "my-service/"   (etcd's gRPC naming layout)
      etcd://127.0.0.1:2379//services/foo     keys under "/services/foo/" (go-kit's layout: two slashes)
  codec: how values are read; auto (the default) reads etcd naming JSON, go-kit strings and sdkit JSON.
  register writes naming ({"Op":0,"Addr":ADDRESS,"Metadata":…}) unless the target says codec=gokit (the
  value is ADDRESS) or codec=json, under the key PREFIX + ADDRESS.

Options:
  --json                   ls: a JSON array of {key, address, metadata}; resolve: a JSON array of addresses;
                           watch: one {"instances":[…],"error"?:{…}} per line, also on a terminal;
                           register: one {"state","key",…} per state
  --timeout DURATION       ls, resolve: how long to wait for the answer (default 10s)
  --dial-timeout DURATION  connecting (default: etcd 3s, Kubernetes 5s)
  --ttl SECONDS            register: the lease TTL (default 10); after a crash the key lives that long
  --metadata JSON          register: a JSON object stored with the address (codecs naming and json)
  -h, --help               this text;  --version  the version
  DURATION: 500ms, 5s, 1m, or a number of seconds.

etcd (etcdctl's names; each also read from $ETCDCTL_<NAME>, e.g. $ETCDCTL_CACERT):
  --endpoints LIST         for etcd:///PREFIX targets: HOST:PORT or URLs, comma-separated
  --cacert FILE            TLS: the CA of etcd's certificate; --cert FILE --key FILE: a client certificate
  --user NAME              etcd auth (or $ETCDCTL_USER, which may be NAME:PASSWORD)
  --password-file FILE     the password (its first line); else $ETCDCTL_PASSWORD. Never on the command line.

Kubernetes (kubectl's names):
  --kubeconfig FILE        default $KUBECONFIG, ~/.kube/config, or in-cluster
  --context NAME           a kubeconfig context
  -n, --namespace NAME     for targets that name no namespace (default: the context's)

Exit status: 0 success; 1 the source failed (unreachable, credentials refused, an error answer, nothing within
--timeout); 2 usage (bad arguments, target or configuration). watch and register exit 0 on SIGINT/SIGTERM.
More: docs/cli.md
`;
}
