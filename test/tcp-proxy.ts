/** A TCP proxy in front of a real server, to take it away (sockets and all) and bring it back. */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  /** `target`: the real server's URL (postgres://..., redis://...). */
  constructor(private readonly target: string) {}

  async start(): Promise<void> {
    const target = new URL(this.target);
    const defaultPort = target.protocol.startsWith('redis') ? 6379 : 5432;
    this.server = createServer((inbound) => {
      const outbound = connect(Number(target.port || defaultPort), target.hostname);
      for (const socket of [inbound, outbound]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The server going away: every open connection is cut and new ones are refused. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
    this.server = null;
  }

  /** The target's URL, through the proxy. */
  get url(): string {
    const url = new URL(this.target);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }
}
