/**
 * @sdkit/sd-grpc — gRPC over sdkit discovery: a @grpc/grpc-js name resolver for any Instancer
 * (`registerInstancerScheme`), `etcd:///service` targets (`registerEtcdScheme`), the parser of kuberesolver's
 * `kubernetes:///` target forms (the Kubernetes backend itself is not written yet), and a go-kit style Factory
 * that turns an instance into a unary gRPC endpoint (`grpcFactory`).
 * @packageDocumentation
 */
export { formatGrpcAddress, type GrpcAddress, type ParsedGrpcAddress, parseGrpcAddress } from './address.js';
export { type EtcdSchemeOptions, etcdPrefixForTarget, registerEtcdScheme } from './etcd-scheme.js';
export {
  type GrpcClientConstructor,
  type GrpcFactoryOptions,
  grpcFactory,
} from './factory.js';
export * from './kubernetes-target.js';
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
