/**
 * How to reach an embedded server: the fixed user and password (it listens on loopback only) and
 * a free loopback port. Shared by both ways of running it and by the test harness.
 */
import net from "node:net";

export const USER = "postgres";
export const PASSWORD = "postgres";

/** How to reach an embedded server on `port` (fixed user and password: it listens on loopback only). */
export function embeddedUrl(port: number): string {
  return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
