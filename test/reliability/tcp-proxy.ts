/**
 * A small TCP proxy between tiergate and the campaign's server (which
 * listens on a Unix socket only): tiergate connects to 127.0.0.1:port, the
 * proxy forwards to the socket. A test can cut every link (both sides
 * closed, as a dropped connection), cut exactly when a COMMIT goes by (the
 * server gets it, the client never hears back), or turn the link into a
 * black hole (nothing passes, nothing closes: a silent partition).
 */
import net from 'node:net';

interface Link {
  client: net.Socket;
  server: net.Socket;
}

export class TcpProxy {
  private readonly links = new Set<Link>();
  private server!: net.Server;
  private blackholed = false;
  private onCommit: ((link: Link) => void) | null = null;
  port = 0;
  /** connections accepted so far */
  accepted = 0;

  constructor(private readonly socketPath: string) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const server = net.connect(this.socketPath);
    const link: Link = { client, server };
    this.links.add(link);
    const end = () => {
      // in a black hole a close does not travel either: the other side keeps waiting
      if (this.blackholed && this.links.has(link)) return;
      this.links.delete(link);
      client.destroy();
      server.destroy();
    };
    client.on('error', end);
    server.on('error', end);
    client.on('close', end);
    server.on('close', end);
    client.on('data', (d: Buffer) => {
      if (this.blackholed) return;
      server.write(d);
      // a simple-protocol Query ('Q') whose text is COMMIT: the server gets it, the client never hears back
      if (this.onCommit && d[0] === 0x51 && /^commit\b/i.test(d.subarray(5).toString('utf8').trim())) this.onCommit(link);
    });
    server.on('data', (d: Buffer) => {
      if (this.blackholed || !this.links.has(link)) return;
      client.write(d);
    });
  }

  /** The URL of a database through the proxy. */
  url(database: string, user = 'postgres'): string {
    return `postgres://${user}@127.0.0.1:${this.port}/${database}`;
  }

  /** Drops every open link (both sides), as a network failure would; new connections still work. */
  cut(): number {
    const n = this.links.size;
    for (const l of [...this.links]) {
      l.client.resetAndDestroy();
      l.server.destroy();
      this.links.delete(l);
    }
    return n;
  }

  /**
   * Arms a cut at the next COMMIT: the COMMIT reaches the server, then the
   * client's side is reset at once; the server's side is closed a little
   * later (after the server has committed).
   */
  cutAtNextCommit(): Promise<void> {
    return new Promise((resolve) => {
      this.onCommit = (link) => {
        this.onCommit = null;
        this.links.delete(link);
        link.client.resetAndDestroy();
        setTimeout(() => {
          link.server.destroy();
          resolve();
        }, 300);
      };
    });
  }

  /** From now on nothing passes in either direction and nothing is closed. */
  blackhole(): void {
    this.blackholed = true;
  }

  /** Ends the black hole: drops the links it held (as a partition that heals with the connections lost). */
  heal(): void {
    this.blackholed = false;
    this.cut();
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
