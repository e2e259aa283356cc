# workerd config of the example worker (`pnpm start` builds dist/worker.mjs and serves this file).
#
#   workerd serve workerd.capnp --socket-addr http=127.0.0.1:8787 --verbose
#
# Bindings come from the environment: ETCD_ENDPOINTS (comma-separated etcd client URLs) and SERVICE_PREFIX (the
# etcd prefix of the service's instances); unset, the worker uses http://127.0.0.1:2379 and /services/hello/.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # The worker's fetch() goes through this service. workerd's default ("internet") allows public addresses
    # only; etcd and the instances are on this machine here, so allow loopback ("local"). Add "private" or
    # CIDRs to reach instances on your network.
    (name = "loopback", network = (allow = ["local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
  ],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "dist/worker.mjs"),
  ],
  compatibilityDate = "2026-11-01",
  # Node.js compatibility is on by default at this date; turned off to show the worker needs none of it.
  compatibilityFlags = ["no_nodejs_compat", "no_nodejs_compat_v2"],
  bindings = [
    (name = "ETCD_ENDPOINTS", fromEnvironment = "ETCD_ENDPOINTS"),
    (name = "SERVICE_PREFIX", fromEnvironment = "SERVICE_PREFIX"),
  ],
  globalOutbound = "loopback",
);
