import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy the chaos tool puts between the server and PostgreSQL: `cut()` drops every open
 * connection and refuses new ones (they are reset at once) until `restore()`. The server sees what it
 * would see when the database host or the network between them fails.
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly open = new Set<net.Socket>();
  private isCut = false;
  /** Connections accepted and connections reset while cut (for the report). */
  accepted = 0;
  refused = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = net.createServer((client) => this.onClient(client));
  }

  get cut(): boolean {
    return this.isCut;
  }

  listen(port = 0, host = '127.0.0.1'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  private onClient(client: net.Socket): void {
    client.on('error', () => undefined);
    if (this.isCut) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const upstream = net.connect(this.targetPort, this.targetHost);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => {
      upstream.destroy();
      this.open.delete(client);
      this.open.delete(upstream);
    });
    upstream.on('close', () => {
      client.destroy();
      this.open.delete(client);
      this.open.delete(upstream);
    });
    client.pipe(upstream);
    upstream.pipe(client);
    this.open.add(client);
    this.open.add(upstream);
  }

  /** Drops every connection (reset, as when the network fails) and refuses new ones. */
  cutNow(): void {
    this.isCut = true;
    for (const s of this.open) {
      if (s.readyState !== 'closed' && !s.destroyed) s.resetAndDestroy();
    }
    this.open.clear();
  }

  restore(): void {
    this.isCut = false;
  }

  close(): Promise<void> {
    this.cutNow();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
