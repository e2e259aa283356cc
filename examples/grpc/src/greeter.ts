import {
  type Client,
  makeClientConstructor,
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';

/** The example's request and reply. */
export interface HelloRequest {
  readonly name: string;
}
export interface HelloReply {
  readonly message: string;
  /** Which server answered. */
  readonly server: string;
}

// A one-method service with JSON on the wire, so the example needs no .proto file (any protobuf client works the
// same way: sdkit only decides where the channel connects).
const json = {
  serialize: (value: unknown) => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer) => JSON.parse(bytes.toString('utf8')),
};
const definition: ServiceDefinition = {
  SayHello: {
    path: '/example.Greeter/SayHello',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

/** A grpc-js client class for the Greeter service. */
export const GreeterClient = makeClientConstructor(definition, 'example.Greeter');

/** Promisified `SayHello`, bounded by `deadlineMs`. */
export function sayHello(client: Client, name: string, deadlineMs = 2000): Promise<HelloReply> {
  return new Promise((resolve, reject) => {
    (client as unknown as Record<string, (...args: unknown[]) => void>).SayHello!(
      { name },
      { deadline: Date.now() + deadlineMs },
      (err: ServiceError | null, reply: HelloReply) => (err ? reject(err) : resolve(reply)),
    );
  });
}

/** A running Greeter server on 127.0.0.1 (a free port). */
export interface GreeterServer {
  readonly id: string;
  readonly address: string;
  stop(): Promise<void>;
}

export async function startGreeter(id: string): Promise<GreeterServer> {
  const server = new Server();
  server.addService(definition, {
    SayHello: (call: { request: HelloRequest }, callback: (e: null, r: HelloReply) => void) =>
      callback(null, { message: `hello, ${call.request.name}`, server: id }),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    id,
    address: `127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
  };
}
