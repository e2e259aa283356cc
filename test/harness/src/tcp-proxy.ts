import net from 'node:net';

/** How a {@link TcpProxy} treats traffic now. */
export type ProxyMode =
  /** Bytes flow (after `delayMs`, if set). */
  | 'pass'
  /** Every connection is reset and new ones are refused: the client sees the server go away at once. */
  | 'cut'
  /**
   * A silent partition: connections stay open and new ones are accepted, but no byte crosses in either
   * direction (they are held, as TCP would retransmit them, and delivered on `resume()`). Neither side learns
   * anything until it times out by itself.
   */
  | 'stall';

/**
 * A TCP proxy on 127.0.0.1 in front of one endpoint, that a test can cut, stall, delay and resume: the network
 * faults between a client and etcd, while the test keeps talking to etcd directly.
 *
 * Data is forwarded in order per direction; with `delayMs` each chunk is held that long. The proxy listens on a
 * free loopback port; `endpoint` keeps the target's scheme (`http://127.0.0.1:PORT`).
 */
export class TcpProxy implements AsyncDisposable {
  readonly #server: net.Server;
  readonly #target: URL;
  readonly #links = new Set<Link>();
  #mode: ProxyMode = 'pass';
  #delayMs = 0;
  /** Connections accepted since start (each client connection counts once). */
  connections = 0;

  /** The proxy's URL, e.g. `http://127.0.0.1:40123`: give it to the client instead of the target's. */
  readonly endpoint: string;

  private constructor(server: net.Server, target: URL, endpoint: string) {
    this.#server = server;
    this.#target = target;
    this.endpoint = endpoint;
    server.on('connection', (socket) => this.#accept(socket));
  }

  /** Starts a proxy to `target` (a URL such as `http://127.0.0.1:2379`). */
  static async start(target: string): Promise<TcpProxy> {
    const url = new URL(target);
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const { port } = server.address() as net.AddressInfo;
    return new TcpProxy(server, url, `${url.protocol}//127.0.0.1:${port}`);
  }

  /** The current mode. */
  get mode(): ProxyMode {
    return this.#mode;
  }

  /** Resets every connection and refuses new ones until {@link resume}. */
  cut(): void {
    this.#mode = 'cut';
    for (const link of this.#links) link.destroy();
  }

  /** Holds every byte in both directions (connections stay open) until {@link resume}. */
  stall(): void {
    this.#mode = 'stall';
  }

  /** Adds `ms` of latency to every chunk from now on (0 removes it). */
  delay(ms: number): void {
    if (!(ms >= 0)) throw new TypeError(`TcpProxy.delay: ms must be >= 0, got ${ms}`);
    this.#delayMs = ms;
  }

  /** Back to `pass`: held bytes are delivered, new connections accepted. */
  resume(): void {
    this.#mode = 'pass';
    for (const link of this.#links) link.pump();
  }

  /** Closes every connection and the listener. Idempotent. */
  async close(): Promise<void> {
    this.#mode = 'cut';
    for (const link of this.#links) link.destroy();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(client: net.Socket): void {
    if (this.#mode === 'cut') {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = net.connect(Number(this.#target.port), this.#target.hostname);
    const link = new Link(
      client,
      upstream,
      () => this.#mode === 'stall',
      () => this.#delayMs,
    );
    this.#links.add(link);
    link.onClose = () => this.#links.delete(link);
  }
}

/** One proxied connection: two sockets and a queue per direction. */
class Link {
  onClose: (() => void) | undefined;
  readonly #toUpstream: Chunk[] = [];
  readonly #toClient: Chunk[] = [];
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly client: net.Socket,
    readonly upstream: net.Socket,
    readonly stalled: () => boolean,
    readonly delayMs: () => number,
  ) {
    for (const [from, queue] of [
      [client, this.#toUpstream],
      [upstream, this.#toClient],
    ] as const) {
      from.on('data', (data: Buffer) => {
        queue.push({ data, due: Date.now() + delayMs() });
        this.pump();
      });
      from.on('error', () => this.destroy());
      from.on('close', () => this.destroy());
    }
  }

  /** Writes every chunk that is due, unless stalled; re-arms itself for delayed ones. */
  pump(): void {
    if (this.#closed || this.stalled()) return;
    const now = Date.now();
    let next = Number.POSITIVE_INFINITY;
    for (const [queue, to] of [
      [this.#toUpstream, this.upstream],
      [this.#toClient, this.client],
    ] as const) {
      while (queue.length > 0 && queue[0]!.due <= now) to.write(queue.shift()!.data);
      if (queue.length > 0) next = Math.min(next, queue[0]!.due);
    }
    if (next !== Number.POSITIVE_INFINITY && this.#timer === undefined) {
      this.#timer = setTimeout(
        () => {
          this.#timer = undefined;
          this.pump();
        },
        Math.max(1, next - now),
      );
    }
  }

  destroy(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.client.destroy();
    this.upstream.destroy();
    this.onClose?.();
  }
}

interface Chunk {
  readonly data: Buffer;
  readonly due: number;
}
