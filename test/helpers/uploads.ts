/**
 * Upload requests made by hand, for the tests of fussyd's uploads: what no honest client sends (a
 * body cut mid-way, wrong offsets, a declared sha256 the bytes do not have), and a TCP relay that
 * cuts a connection, as a network does.
 */
import { request } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { call } from './fussyd.js';
import { tlsFixtures, type Creds } from './tls-fixtures.js';

/** PUT the first `n` bytes of `bytes` as upload `id` of `bytes.length`, declaring the whole rest, then cut the connection. */
export async function putHalfAndCut(port: number, creds: Creds, id: string, bytes: Buffer, n: number): Promise<void> {
  const f = await tlsFixtures();
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'PUT',
    path: `/v1/uploads/${id}`,
    ca: f.caPem,
    cert: creds.certPem,
    key: creds.keyPem,
    agent: false,
    headers: { 'content-type': 'application/octet-stream', 'content-length': bytes.length, 'fussy-upload-size': bytes.length, 'fussy-upload-offset': 0 },
  });
  req.on('error', () => undefined); // the cut is the point
  req.write(bytes.subarray(0, n));
  for (const until = Date.now() + 30_000; ; await new Promise((r) => setTimeout(r, 20))) {
    const st = await call(port, creds, 'GET', `/v1/uploads/${id}`);
    if (st.status === 200 && (st.json.have as number) >= n) break;
    if (Date.now() > until) throw new Error(`the daemon never held ${n} bytes: ${st.body.toString()}`);
  }
  req.destroy();
}

/** PUT `body` as upload `id` with the upload headers (default: the whole of a package of body.length from 0). */
export async function putWithHeaders(port: number, creds: Creds, id: string, body: Buffer, o: { size?: number; offset?: number } = {}): Promise<{ status: number; json: Record<string, unknown> & { error?: { code: string } } }> {
  const f = await tlsFixtures();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'PUT',
        path: `/v1/uploads/${id}`,
        ca: f.caPem,
        cert: creds.certPem,
        key: creds.keyPem,
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, 'fussy-upload-size': o.size ?? body.length, 'fussy-upload-offset': o.offset ?? 0 },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A TCP relay to 127.0.0.1:`port` that cuts the first connection past `after` bytes from its client (once). */
export async function cuttingRelay(port: number, after: number): Promise<{ server: Server; port: number; cut: () => boolean }> {
  let cut = false;
  const server = createServer((client: Socket) => {
    const up = connect(port, '127.0.0.1');
    let n = 0;
    client.on('data', (b: Buffer) => {
      n += b.length;
      if (!cut && n > after) {
        cut = true;
        client.destroy();
        up.destroy();
        return;
      }
      up.write(b);
    });
    up.on('data', (b: Buffer) => client.write(b));
    for (const [a, b] of [[client, up], [up, client]] as const) {
      a.on('error', () => b.destroy());
      a.on('close', () => b.destroy());
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port, cut: () => cut };
}
