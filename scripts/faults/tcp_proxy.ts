/**
 * A TCP proxy on 127.0.0.1 that breaks connections on demand, for fault
 * injection: between the `track` function and Postgres, or between the client
 * and the functions gateway.
 *
 * Three faults, each counted:
 * - {@linkcode FaultProxy.cutRequests}: the next `n` requests are cut in the
 *   middle (half of their first chunk is forwarded, then both sides are
 *   closed), so the server never sees a whole request;
 * - {@linkcode FaultProxy.cutResponses}: the next `n` answers are swallowed
 *   and both sides closed, so the work was done but the caller never hears of
 *   it. With `protocol: "postgres"` an answer is only cut once Postgres has
 *   sent `ReadyForQuery` after a `CommandComplete`: the transaction has
 *   committed when the connection drops;
 * - {@linkcode FaultProxy.dropAll}: every open connection is closed at once,
 *   whatever it is doing.
 *
 * When the target refuses a connection (it is down), the proxy stops
 * listening until the target accepts again, so that clients are refused too,
 * as they would be without the proxy.
 *
 * The Postgres protocol is followed only as far as needed: the server's
 * messages are framed (type byte, length), and from a `CommandComplete` to
 * the `ReadyForQuery` that follows (the commit of an implicit transaction)
 * they are held back, so that the proxy can drop them instead. A request, for
 * Postgres, is a chunk starting with Parse, Bind or Query. Connections must
 * not use TLS (loopback URLs without `sslmode`); an `SSLRequest` refused with
 * `N` is let through.
 *
 * @example
 * ```ts
 * import { FaultProxy } from "./tcp_proxy.ts";
 *
 * async function loseAnswers() {
 *   const proxy = new FaultProxy({ port: 55332, targetPort: 55322, protocol: "postgres" });
 *   proxy.cutResponses(3); // three committed transactions whose answer is lost
 *   proxy.dropAll();
 *   await proxy.close();
 * }
 * ```
 *
 * @module
 */

/** What a proxy speaks: Postgres is framed by message, anything else by chunk. */
export type ProxyProtocol = "postgres" | "http";

/** Where a proxy listens and where it forwards. */
export interface ProxyOptions {
  /** Port to listen on, on 127.0.0.1 (0 for any free port). */
  port: number;
  /** Port to forward to, on 127.0.0.1. */
  targetPort: number;
  protocol: ProxyProtocol;
}

/** How often each fault struck, and how many connections went through. */
export interface ProxyCounts {
  connections: number;
  /** Connections refused because the target did not accept one. */
  refused: number;
  requestsCut: number;
  responsesCut: number;
  dropped: number;
}

// Postgres backend message types the proxy acts on.
const READY_FOR_QUERY = 0x5a; // 'Z'
const COMMAND_COMPLETE = 0x43; // 'C'
const SSL_REQUEST_CODE = 80877103;
// Frontend messages that start a query: Parse, Bind, Query.
const QUERY_STARTS = new Set([0x50, 0x42, 0x51]);

/** One client connection and its upstream twin. */
class Pair {
  #closed = false;
  /** A request was forwarded and its answer has not started yet. */
  awaitingAnswer = false;
  /** Postgres: the first `ReadyForQuery` was seen, so the session is set up. */
  ready = false;
  /** Postgres: the client asked for TLS and the one-byte answer is due. */
  sslAnswerDue = false;
  /** Postgres: bytes of server messages not yet framed. */
  pending: Uint8Array = new Uint8Array(0);
  /** Postgres: server messages held back, from `CommandComplete` to `ReadyForQuery`. */
  held: Uint8Array[] = [];
  holding = false;

  constructor(readonly client: Deno.Conn, readonly upstream: Deno.Conn) {}

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const conn of [this.client, this.upstream]) {
      try {
        conn.close();
      } catch {
        // Already closed by the other side.
      }
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Splits `pending` followed by `bytes` into whole Postgres backend messages
 * and the incomplete tail.
 */
function frameBackendMessages(pending: Uint8Array, bytes: Uint8Array): {
  messages: Uint8Array[];
  rest: Uint8Array;
} {
  const data = pending.length === 0 ? bytes : concat([pending, bytes]);
  const messages: Uint8Array[] = [];
  let offset = 0;
  while (data.length - offset >= 5) {
    const length = new DataView(data.buffer, data.byteOffset + offset + 1, 4).getInt32(0);
    if (length < 4) throw new Error(`malformed Postgres message (length ${length})`);
    if (data.length - offset < 1 + length) break;
    messages.push(data.subarray(offset, offset + 1 + length));
    offset += 1 + length;
  }
  return { messages, rest: data.slice(offset) };
}

function isSslRequest(chunk: Uint8Array): boolean {
  if (chunk.length !== 8) return false;
  const view = new DataView(chunk.buffer, chunk.byteOffset, 8);
  return view.getInt32(0) === 8 && view.getInt32(4) === SSL_REQUEST_CODE;
}

/** A loopback TCP proxy with faults on demand. */
export class FaultProxy {
  readonly protocol: ProxyProtocol;
  readonly #targetPort: number;
  readonly #port: number;
  #listener: Deno.TcpListener | null;
  #closed = false;
  #watching: Promise<void> = Promise.resolve();
  readonly #pairs = new Set<Pair>();
  readonly #tasks = new Set<Promise<void>>();
  #requestsToCut = 0;
  #responsesToCut = 0;
  #accepting: Promise<void>;
  readonly counts: ProxyCounts = {
    connections: 0,
    refused: 0,
    requestsCut: 0,
    responsesCut: 0,
    dropped: 0,
  };

  constructor(options: ProxyOptions) {
    this.protocol = options.protocol;
    this.#targetPort = options.targetPort;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port });
    this.#listener = listener;
    this.#port = listener.addr.port;
    this.#accepting = this.#accept(listener);
  }

  /** The port the proxy listens on. */
  get port(): number {
    return this.#port;
  }

  /** Connections with a request under way (sent, its answer not finished). */
  get busy(): number {
    let count = 0;
    for (const pair of this.#pairs) if (pair.awaitingAnswer) count++;
    return count;
  }

  /** Cuts the next `n` requests in the middle. */
  cutRequests(n: number): void {
    this.#requestsToCut += n;
  }

  /** Swallows the next `n` answers (committed ones, for Postgres) and closes their connections. */
  cutResponses(n: number): void {
    this.#responsesToCut += n;
  }

  /** Faults armed and not yet struck. */
  get armed(): number {
    return this.#requestsToCut + this.#responsesToCut;
  }

  /** Disarms whatever has not struck yet. */
  disarm(): void {
    this.#requestsToCut = 0;
    this.#responsesToCut = 0;
  }

  /** Closes every open connection now; answers how many there were. */
  dropAll(): number {
    const count = this.#pairs.size;
    for (const pair of this.#pairs) pair.close();
    this.counts.dropped += count;
    return count;
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#stopListening();
    for (const pair of this.#pairs) pair.close();
    await this.#watching;
    await this.#accepting;
    await Promise.allSettled([...this.#tasks]);
  }

  #stopListening(): void {
    try {
      this.#listener?.close();
    } catch {
      // Already closed.
    }
    this.#listener = null;
  }

  /**
   * The target refused a connection: so does the proxy, by not listening,
   * until the target accepts again. A client then sees the refusal itself,
   * not a connection that opens and closes (which clients treat otherwise:
   * postgres.js, for one, backs off only after refused connections).
   */
  #refuseUntilTargetIsBack(): void {
    if (this.#listener === null || this.#closed) return;
    this.#stopListening();
    this.#watching = (async () => {
      while (!this.#closed) {
        try {
          (await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort })).close();
          break;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      if (this.#closed) return;
      const listener = Deno.listen({ hostname: "127.0.0.1", port: this.#port });
      this.#listener = listener;
      const previous = this.#accepting;
      this.#accepting = Promise.all([previous, this.#accept(listener)]).then(() => {});
    })();
  }

  async #accept(listener: Deno.TcpListener): Promise<void> {
    for (;;) {
      let client: Deno.Conn;
      try {
        client = await listener.accept();
      } catch {
        return; // the listener was closed
      }
      const task = this.#serve(client);
      this.#tasks.add(task);
      task.finally(() => this.#tasks.delete(task));
    }
  }

  async #serve(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#targetPort });
    } catch {
      this.counts.refused++;
      try {
        client.close();
      } catch {
        // Gone already.
      }
      this.#refuseUntilTargetIsBack();
      return;
    }
    this.counts.connections++;
    const pair = new Pair(client, upstream);
    this.#pairs.add(pair);
    try {
      await Promise.all([this.#clientToUpstream(pair), this.#upstreamToClient(pair)]);
    } finally {
      pair.close();
      this.#pairs.delete(pair);
    }
  }

  async #clientToUpstream(pair: Pair): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await pair.client.read(buffer);
        if (n === null || pair.closed) break;
        const chunk = buffer.slice(0, n);
        if (this.protocol === "postgres" && !pair.ready && isSslRequest(chunk)) {
          pair.sslAnswerDue = true;
        }
        const startsRequest = !pair.awaitingAnswer &&
          (this.protocol === "http" || (pair.ready && QUERY_STARTS.has(chunk[0])));
        if (startsRequest && this.#requestsToCut > 0) {
          this.#requestsToCut--;
          this.counts.requestsCut++;
          await writeAll(pair.upstream, chunk.subarray(0, Math.floor(n / 2)));
          break;
        }
        if (startsRequest) pair.awaitingAnswer = true;
        await writeAll(pair.upstream, chunk);
      }
    } catch {
      // A side was closed: the pair goes.
    } finally {
      pair.close();
    }
  }

  async #upstreamToClient(pair: Pair): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await pair.upstream.read(buffer);
        if (n === null || pair.closed) break;
        const chunk = buffer.slice(0, n);
        if (this.protocol === "http") {
          if (pair.awaitingAnswer && this.#responsesToCut > 0) {
            this.#responsesToCut--;
            this.counts.responsesCut++;
            break;
          }
          pair.awaitingAnswer = false;
          await writeAll(pair.client, chunk);
          continue;
        }
        if (!(await this.#relayPostgres(pair, chunk))) break;
      }
      // What was held back still reaches the client before the close (a
      // FATAL error from a server shutting down, say).
      if (!pair.closed && pair.held.length > 0) await writeAll(pair.client, concat(pair.held));
    } catch {
      // A side was closed: the pair goes.
    } finally {
      pair.close();
    }
  }

  // Answers false when the connection was cut.
  async #relayPostgres(pair: Pair, chunk: Uint8Array): Promise<boolean> {
    let bytes = chunk;
    if (pair.sslAnswerDue) {
      pair.sslAnswerDue = false;
      await writeAll(pair.client, bytes.subarray(0, 1));
      if (bytes[0] !== 0x4e) throw new Error("the proxy cannot follow a TLS connection");
      bytes = bytes.subarray(1);
    }
    const { messages, rest } = frameBackendMessages(pair.pending, bytes);
    pair.pending = rest;
    const out: Uint8Array[] = [];
    let cut = false;
    for (const message of messages) {
      const type = message[0];
      if (!pair.ready) {
        // Session setup (authentication) goes through as it comes.
        out.push(message);
        if (type === READY_FOR_QUERY) pair.ready = true;
        continue;
      }
      // From CommandComplete on, the answer is held back: the client cannot
      // finish the query before it sees ReadyForQuery, when the proxy decides.
      if (type === COMMAND_COMPLETE) pair.holding = true;
      if (!pair.holding) {
        out.push(message);
        if (type === READY_FOR_QUERY) pair.awaitingAnswer = false;
        continue;
      }
      pair.held.push(message);
      if (type !== READY_FOR_QUERY) continue;
      const answer = pair.held;
      pair.held = [];
      pair.holding = false;
      pair.awaitingAnswer = false;
      if (this.#responsesToCut > 0) {
        this.#responsesToCut--;
        this.counts.responsesCut++;
        cut = true;
        break;
      }
      out.push(...answer);
    }
    if (out.length > 0) await writeAll(pair.client, concat(out));
    return !cut;
  }
}
