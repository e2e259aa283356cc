/**
 * @sdkit/sd-grpc — gRPC over sdkit discovery: a @grpc/grpc-js name resolver for any Instancer
 * (`registerInstancerScheme`), `etcd:///service` and `kubernetes:///service.namespace:port` targets
 * (`registerEtcdScheme`, `registerKubernetesScheme`: each takes the backend's client, so this package depends on
 * no backend), and a go-kit style Factory that turns an instance into a unary gRPC endpoint (`grpcFactory`).
 * @packageDocumentation
 */
export { formatGrpcAddress, type GrpcAddress, type ParsedGrpcAddress, parseGrpcAddress } from './address.js';
export { type EtcdSchemeOptions, registerEtcdScheme } from './etcd-scheme.js';
export {
  type GrpcClientConstructor,
  type GrpcFactoryOptions,
  grpcFactory,
} from './factory.js';
export { type KubernetesSchemeOptions, registerKubernetesScheme } from './kubernetes-scheme.js';
export {
  DEFAULT_SERVICE_CONFIG,
  defaultAuthorityForTarget,
  type GrpcTarget,
  type InstancerForTarget,
  type InstancerSchemeOptions,
  isValidAuthority,
  registerInstancerScheme,
  type SchemeRegistration,
} from './resolver.js';
